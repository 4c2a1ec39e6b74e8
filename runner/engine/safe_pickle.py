"""Reading pickled jobs and results without running code that came from Redis.

``pickle.loads`` imports any module and calls any function a payload names: whoever can write to the queue's
Redis can run code in every process that decodes a job. A worker has to (that is what running a pickled job
means: see ``sign_serializer`` for payloads it can trust), but nothing that only *looks* at jobs needs to.
``safe_loads`` decodes plain data for real: the builtin containers and scalars, dates and times, ``Decimal``,
``UUID``, the builtin exceptions and runner's own. Any other global a payload names (a class of the
application, or ``os.system``) is neither imported nor called: it becomes an ``Undecoded`` value that says what
it was, so ``runner jobs show`` can still print everything else about the job.

``allow`` extends the list: a module name (``"myapp.models"``, which covers its submodules too) or one
``"module:attribute"``. Name only modules that hold data classes: a module with a function that deletes files
lets a payload call that function.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import collections
import copyreg
import datetime
import decimal
import importlib
import io
import pickle
import uuid
import zoneinfo
from collections.abc import Collection, Iterator
from typing import Any

from runner import errors

_SAFE_BUILTINS = frozenset(
    {"bytearray", "bytes", "complex", "dict", "frozenset", "list", "object", "range", "set", "slice", "str", "tuple"}
)
_SAFE = {
    ("collections", name) for name in ("OrderedDict", "Counter", "deque")
} | {
    ("datetime", name) for name in ("date", "datetime", "time", "timedelta", "timezone")
} | {
    ("decimal", "Decimal"),
    ("uuid", "UUID"),
    ("uuid", "SafeUUID"),
    ("zoneinfo", "ZoneInfo"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),  # protocol 2 spells bytes as encode(text, "latin1")
    ("asyncio.exceptions", "CancelledError"),
    ("asyncio.exceptions", "TimeoutError"),
    ("asyncio.exceptions", "InvalidStateError"),
    ("concurrent.futures._base", "CancelledError"),
    ("concurrent.futures._base", "TimeoutError"),
}  # fmt: skip
# ``getattr(cls, name)`` is how pickle spells a classmethod; only these are looked up for real
_SAFE_ATTRIBUTES = {(zoneinfo.ZoneInfo, "_unpickle")}
_PRELOADED = (collections, copyreg, datetime, decimal, uuid, zoneinfo)  # imported above: no import at decode time


class Undecoded:
    """A value ``safe_loads`` did not build, because building it would import and call ``name``.

    Attributes:
        name: the global the payload named, ``"module.attribute"``.
        args: what it would have been called with.
        state: what would have been set on the result (``__setstate__`` or ``__dict__``), if anything.
    """

    name = "?"

    args: tuple[Any, ...]
    state: Any
    items: list[Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Undecoded:
        # set here, not in __init__: pickle's NEWOBJ makes instances with __new__ alone
        self = super().__new__(cls)
        self.args, self.state, self.items = args, kwargs or None, []
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Undecoded:
        # a value looked up on an undecoded one (getattr) and then called: still nothing runs
        return _stub(f"{self.name}(...)")(*args, **kwargs)

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items.append((key, value))

    def append(self, value: Any) -> None:
        self.items.append(value)

    def extend(self, values: Any) -> None:
        self.items.extend(values)

    def __repr__(self) -> str:
        shown = ", ".join(repr(a) for a in self.args) or ("" if self.state is None else repr(self.state))
        return f"<{self.name}({shown}), not decoded>"

    __str__ = __repr__

    @property
    def module(self) -> str:
        """The module the global would have been imported from."""
        return self.name.rpartition(".")[0] or self.name

    @property
    def message(self) -> str:
        """What an exception would have said: its first argument, as a string."""
        return str(self.args[0]) if self.args else ""


def _stub(name: str) -> type[Undecoded]:
    return type("Undecoded", (Undecoded,), {"name": name, "__slots__": ()})


def _safe_getattr(obj: Any, name: str) -> Any:
    if any(obj is cls and name == attr for cls, attr in _SAFE_ATTRIBUTES):
        return getattr(obj, name)
    label = obj.name if isinstance(obj, Undecoded) or (isinstance(obj, type) and issubclass(obj, Undecoded)) else obj
    return _stub(f"{label}.{name}" if isinstance(label, str) else f"{type(obj).__name__}.{name}")


def _allowed(module: str, name: str, allow: Collection[str]) -> bool:
    if (module, name) in _SAFE:
        return True
    if module == "builtins":
        value = getattr(builtins, name, None)
        return name in _SAFE_BUILTINS or (isinstance(value, type) and issubclass(value, BaseException))
    if module == "runner.errors":
        value = getattr(errors, name, None)
        return isinstance(value, type) and issubclass(value, BaseException)
    for entry in allow:
        wanted, sep, attr = entry.partition(":")
        if sep and (module, name) == (wanted, attr):
            return True
        if not sep and (module == wanted or module.startswith(wanted + ".")):
            return True
    return False


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, allow: Collection[str]) -> None:
        super().__init__(io.BytesIO(data))
        self.allow = allow

    def find_class(self, module: str, name: str) -> Any:
        # protocols 0-2 may name Python 2 modules ("__builtin__"); pickle maps them the same way
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == "builtins" and name == "getattr":
            return _safe_getattr
        if _allowed(module, name, self.allow):
            value: Any = importlib.import_module(module)
            for part in name.split("."):
                value = getattr(value, part)
            return value
        return _stub(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        return _stub(f"persistent id {pid!r}")()


def safe_loads(raw: bytes, allow: Collection[str] = ()) -> Any:
    """``pickle.loads`` that imports and calls nothing a payload names beyond plain data and ``allow``.

    Raises:
        pickle.UnpicklingError, ValueError, TypeError, EOFError: the bytes are not a pickle it can read.
    """
    return _SafeUnpickler(raw, allow).load()


def undecoded_in(value: Any, depth: int = 0) -> Iterator[Undecoded]:
    """The ``Undecoded`` values inside ``value`` (its containers searched a few levels deep)."""
    if isinstance(value, Undecoded):
        yield value
    elif depth < 8:
        if isinstance(value, dict):
            items: Any = [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple | set | frozenset):
            items = value
        elif isinstance(value, BaseException):
            items = [*value.args, *getattr(value, "__dict__", {}).values()]
        else:
            return
        for item in items:
            yield from undecoded_in(item, depth + 1)
