"""Payloads from Redis are data, not code: readers decode pickles without running them, and a queue with a signing
key only runs jobs its key holders wrote."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner import Job, RedisSettings, RunnerRedis, Worker, create_pool
from runner.engine.safe_pickle import Undecoded
from runner.engine.serializers import sign_serializer
from runner.engine.utils import timestamp_ms
from runner.errors import UnsafePayload
from tests.support.pickles import PLANTED, Invoice, Trap

KEY = "0123456789abcdef" * 4


async def make_invoice(ctx: dict[str, Any], number: int) -> Invoice:
    return Invoice(number)


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def plant_job(pool: RunnerRedis, job_id: str, payload: bytes) -> None:
    """What an attacker with write access to Redis does: a job of their own making, in arq's layout."""
    await pool.set("arq:job:" + job_id, payload, px=60_000)
    await pool.zadd("arq:queue", {job_id: timestamp_ms()})


def crafted(trap: Path, function: str = "add") -> dict[str, Any]:
    return {"t": None, "f": function, "a": (Trap(trap), 2), "k": {}, "et": timestamp_ms()}


def crafted_job(trap: Path, function: str = "add") -> bytes:
    return pickle.dumps(crafted(trap, function))


async def test_reading_a_crafted_job_or_result_runs_nothing(pool: RunnerRedis, tmp_path: Path) -> None:
    trap = tmp_path / "ran"
    await plant_job(pool, "planted", crafted_job(trap))
    result = {"t": 1, "f": "add", "a": (), "k": {}, "et": 1, "s": True, "r": Trap(trap), "st": 1, "ft": 2}
    await pool.set("arq:result:planted-result", pickle.dumps(result))

    [queued] = await pool.queued_jobs()
    assert isinstance(queued.args[0], Undecoded) and queued.args[0].name == "posix.mkdir"
    info = await Job("planted", pool).info()
    assert info is not None and isinstance(info.args[0], Undecoded)
    job = Job("planted-result", pool)
    with pytest.raises(UnsafePayload) as raised:
        await job.result(timeout=1)
    assert str(raised.value) == (
        "The result of job planted-result holds posix.mkdir, which runner does not unpickle by default: that would "
        "import and call code named by data in Redis. Allow it with create_pool(..., pickle_allow=['posix']), or "
        "sign the queue's payloads (sign_serializer)."
    )
    result_info = await job.result_info()
    assert result_info is not None and isinstance(result_info.result, Undecoded)
    # arq before 0.26 wrote no id, nor did this record: as arq does, all_job_results takes it from the key
    assert [r.job_id for r in await pool.all_job_results()] == ["planted-result"]
    assert not trap.exists()


async def test_results_of_allowed_modules_decode(
    redis_url: str, pool: RunnerRedis, make_worker: Callable[..., Worker]
) -> None:
    job = await pool.enqueue_job("make_invoice", 7)
    assert job is not None
    await make_worker([make_invoice]).async_run()
    with pytest.raises(UnsafePayload, match=f"holds {PLANTED}.Invoice"):
        await job.result()
    trusting = await create_pool(RedisSettings.from_dsn(redis_url), pickle_allow=[PLANTED])
    try:
        assert await Job(job.job_id, trusting).result() == Invoice(7)
    finally:
        await trusting.aclose()


async def test_a_signed_queue_runs_its_own_jobs_and_fails_every_other(
    redis_url: str, make_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    dumps, loads = sign_serializer(KEY)
    pool = await create_pool(RedisSettings.from_dsn(redis_url), job_serializer=dumps, job_deserializer=loads)
    try:
        mine = await pool.enqueue_job("make_invoice", 3)
        assert mine is not None
        trap = tmp_path / "ran"
        await plant_job(pool, "unsigned", crafted_job(trap))
        other_dumps, _ = sign_serializer("another key, also long enough!!!")
        await plant_job(pool, "other-key", other_dumps(crafted(trap, "make_invoice")))

        worker = make_worker([make_invoice, add], job_serializer=dumps, job_deserializer=loads)
        await worker.async_run()
        assert not trap.exists()  # neither was decoded
        # signed results were written by a key holder: read in full, custom classes included
        assert await mine.result() == Invoice(3)
        unsigned = await Job("unsigned", pool).result_info()
        other = await Job("other-key", pool).result_info()
        assert unsigned is not None and other is not None
        assert not unsigned.success and not other.success
        assert str(unsigned.result) == (
            "Unable to deserialize job: the payload is not signed; this queue only takes signed payloads"
        )
        assert "signature does not match this queue's signing key" in str(other.result)
        assert await pool.zcard("arq:queue") == 0  # failed for good, not left to poison the next worker
    finally:
        await pool.aclose()


def test_a_short_signing_key_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^a signing key needs at least 32 bytes \(got 5\)$"):
        sign_serializer("short")
