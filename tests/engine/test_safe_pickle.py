"""Reading pickles without running their code: plain data decodes, anything else is named and left undecoded."""

from __future__ import annotations

import asyncio
import collections
import datetime
import decimal
import pickle
import uuid
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from runner.engine.safe_pickle import Undecoded, safe_loads, undecoded_in
from runner.engine.serializers import pickle_loads, reading_deserializer, sign_serializer
from runner.errors import JobExecutionFailed, Retry
from tests.support.pickles import PLANTED, Invoice, Trap


def plain_values() -> list[Any]:
    error = ValueError("boom")
    error.__dict__["runner_traceback"] = "Traceback: ..."
    return [
        1, 2.5, True, None, "text", b"bytes", bytearray(b"ba"), complex(1, 2), (1, "a"), [1, [2]], {"k": {"n": 1}},
        {1, 2}, frozenset({3}), range(3), slice(1, 5),
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC), datetime.date(2026, 1, 2), datetime.time(3, 4),
        datetime.timedelta(seconds=90), decimal.Decimal("1.25"), uuid.UUID(int=7),
        collections.OrderedDict(a=1), collections.Counter("aab"), collections.deque([1, 2]),
        error, TimeoutError("slow"), KeyError("k"), asyncio.CancelledError(), JobExecutionFailed("max 5 retries"),
    ]  # fmt: skip


@pytest.mark.parametrize("protocol", [2, 4, pickle.HIGHEST_PROTOCOL])
def test_plain_data_decodes_as_pickle_would(protocol: int) -> None:
    raw = pickle.dumps(plain_values(), protocol=protocol)
    decoded = safe_loads(raw)
    assert list(undecoded_in(decoded)) == []
    # what pickle itself makes of them (protocol 2 turns a TimeoutError into the OSError Python 2 knew)
    for got, want in zip(decoded, pickle.loads(raw), strict=True):
        if isinstance(want, BaseException):
            assert type(got) is type(want) and got.args == want.args and got.__dict__ == want.__dict__
        else:
            assert got == want and type(got) is type(want)
    retry = safe_loads(pickle.dumps(Retry(3)))
    assert isinstance(retry, Retry) and retry.defer_score == 3000


def test_code_a_payload_names_is_neither_imported_nor_called(tmp_path: Path) -> None:
    trap = tmp_path / "ran"
    data = {"f": "job", "a": (Trap(trap), Invoice(7)), "k": {"x": Trap(trap)}, "t": None, "et": 1}
    raw = pickle.dumps(data)
    decoded = safe_loads(raw)
    assert not trap.exists()
    first, invoice = decoded["a"]
    assert isinstance(first, Undecoded) and first.name == "posix.mkdir"
    assert first.args == (str(trap),)
    assert isinstance(invoice, Undecoded) and invoice.name == f"{PLANTED}.Invoice"
    assert invoice.state == {"number": 7}
    assert repr(invoice) == f"<{PLANTED}.Invoice({{'number': 7}}), not decoded>"
    assert [u.name for u in undecoded_in(decoded)] == [first.name, invoice.name, first.name]
    pickle_loads(pickle.dumps(Trap(trap)))  # and the proof that the trap works: plain pickle runs it
    assert trap.exists()


def test_os_system_and_getattr_gadgets_stay_inert(tmp_path: Path) -> None:
    trap = tmp_path / "ran"
    # hand-written protocol 0 pickles: os.system(...) and getattr(os, "system")(...)
    system = f"cos\nsystem\n(Vtouch {trap}\ntR.".encode()
    via_getattr = f"cbuiltins\ngetattr\n(cos\n_exit\nVsystem\ntR(Vtouch {trap}\ntR.".encode()
    for raw in (system, via_getattr):
        value = safe_loads(raw)
        assert isinstance(value, Undecoded)
    assert not trap.exists()


def test_allow_names_modules_the_reader_trusts() -> None:
    raw = pickle.dumps({"r": Invoice(3)})
    assert isinstance(safe_loads(raw)["r"], Undecoded)
    assert safe_loads(raw, allow=[PLANTED])["r"] == Invoice(3)
    assert safe_loads(raw, allow=[f"{PLANTED}:Invoice"])["r"] == Invoice(3)
    assert isinstance(safe_loads(raw, allow=[f"{PLANTED}:Other"])["r"], Undecoded)
    assert isinstance(safe_loads(raw, allow=["tests.eng"])["r"], Undecoded)  # a prefix is a module, not a string


def test_reading_deserializer_makes_plain_pickle_safe() -> None:
    raw = pickle.dumps({"r": Invoice(1)})
    for plain in (None, pickle.loads, pickle_loads):
        assert isinstance(reading_deserializer(plain)(raw)["r"], Undecoded)
    # a signed payload was written by a key holder: it is read in full
    dumps, loads = sign_serializer("k" * 32)
    assert reading_deserializer(loads)(dumps({"r": Invoice(1)}))["r"] == Invoice(1)
