"""What a worker leaves for the dashboard: its presence record, and the index of failed jobs."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from runner import RunnerRedis, Worker, func
from runner.engine.presence import read_presence
from runner.engine.utils import timestamp_ms

MakeWorker = Callable[..., Worker]


async def fails(ctx: dict[str, Any]) -> None:
    raise ValueError("broken on purpose")


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def sleeps(ctx: dict[str, Any], seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


@pytest.mark.layouts
async def test_presence_record_while_running_and_gone_after_stop(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    worker = make_worker([add, sleeps], burst=False, max_jobs=3)
    job = await pool.enqueue_job("sleeps", 30)
    assert job is not None
    task = asyncio.create_task(worker.async_run())
    try:
        while not await pool.exists(pool.key_layout.worker_info("arq:queue", worker.worker_id)) or not len(
            worker.running
        ):
            await asyncio.sleep(0.02)
        # the first record is written as the worker starts, maybe before it claimed the job: write one now
        await asyncio.sleep(1)
        await worker.parts.health.record_presence()
        records = (await read_presence(pool, ["arq:queue"]))["arq:queue"]
        assert len(records) == 1
        record = records[0]
        assert record.running_ids == [job.job_id]
        assert record.worker_id == worker.worker_id
        assert record.pid == os.getpid()
        assert record.functions == ["add", "sleeps"]
        assert record.max_jobs == 3
        assert record.running == 1
        assert 1 <= record.uptime_s(timestamp_ms()) < 10
        raw = await pool.get(pool.key_layout.worker_info("arq:queue", worker.worker_id))
        assert json.loads(raw)["host"] == record.host
        assert 0 < await pool.pttl(pool.key_layout.worker_info("arq:queue", worker.worker_id)) <= 15_000
    finally:
        worker.request_stop()
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    assert (await read_presence(pool, ["arq:queue"]))["arq:queue"] == []
    assert await pool.exists(pool.key_layout.presence("arq:queue")) == 0


async def test_unreadable_or_expired_presence_records_are_skipped(pool: RunnerRedis) -> None:
    registry = pool.key_layout.presence("q")
    await pool.zadd(registry, {"gone": timestamp_ms(), "garbage": timestamp_ms()})
    await pool.set(pool.key_layout.worker_info("q", "garbage"), b"{not json")
    assert await read_presence(pool, ["q", "other"]) == {"q": [], "other": []}


@pytest.mark.layouts
async def test_failed_jobs_enter_the_failed_index_with_their_expiry(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    kept = await pool.enqueue_job("fails")
    forever = await pool.enqueue_job("fails_forever")
    unkept = await pool.enqueue_job("fails_unkept")
    done = await pool.enqueue_job("add", 1, 2)
    assert kept and forever and unkept and done
    before = timestamp_ms()
    worker = make_worker(
        [
            fails,
            func(fails, name="fails_forever", keep_result_forever=True),
            func(fails, name="fails_unkept", keep_result=0),
            add,
        ],
        keep_result=60,
    )
    await worker.async_run()
    indexed = dict(await pool.zrange(pool.key_layout.failed("arq:queue"), 0, -1, withscores=True))
    assert set(indexed) == {kept.job_id.encode(), forever.job_id.encode()}
    assert before - 1000 <= indexed[kept.job_id.encode()] <= timestamp_ms() + 1000
    expiry = dict(await pool.zrange(pool.key_layout.failed_expiry("arq:queue"), 0, -1, withscores=True))
    # a result kept forever never expires, so it has no expiry entry
    assert set(expiry) == {kept.job_id.encode()}
    assert expiry[kept.job_id.encode()] - indexed[kept.job_id.encode()] == 60_000


async def test_expired_failures_leave_the_index_at_the_next_failure(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    first = await pool.enqueue_job("fails")
    assert first is not None
    await make_worker([func(fails, name="fails", keep_result=0.2)]).async_run()
    assert await pool.zcard(pool.key_layout.failed("arq:queue")) == 1
    await asyncio.sleep(0.3)
    second = await pool.enqueue_job("fails")
    assert second is not None
    await make_worker([func(fails, name="fails", keep_result=0.2)]).async_run()
    assert await pool.zrange(pool.key_layout.failed("arq:queue"), 0, -1) == [second.job_id.encode()]
    assert await pool.zrange(pool.key_layout.failed_expiry("arq:queue"), 0, -1) == [second.job_id.encode()]
