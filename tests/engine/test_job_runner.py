"""The job runner (runner/engine/job_runner.py): one claimed job, from its payload to the outcome it hands on."""

from __future__ import annotations

import asyncio
from typing import Any

from runner import func
from runner.engine.client import RunnerRedis
from runner.engine.events import JobEvent, JobEventKind
from runner.engine.records import JobRecord, JobState
from tests.support.parts import wired


class Kinds:
    def __init__(self) -> None:
        self.seen: list[JobEventKind] = []

    def job_event(self, event: JobEvent) -> None:
        self.seen.append(event.kind)


async def double(ctx: dict[str, Any], x: int) -> int:
    assert ctx["job_try"] == 1 and ctx["score"] > 0
    return 2 * x


async def test_a_job_runs_to_its_result_with_its_events(pool: RunnerRedis) -> None:
    job = await pool.enqueue_job("double", 21)
    assert job is not None
    kinds = Kinds()
    async with wired(pool, [double], observers=[kinds]) as (_, parts):
        (claim,) = (await parts.poll.claim(1)).claims
        record = JobRecord(claim)
        await parts.runner.run(record)
        assert record.state is JobState.FINISHING
        await parts.writer.wait_idle()
    assert kinds.seen == [JobEventKind.STARTED, JobEventKind.COMPLETE]
    assert await job.result(timeout=5) == 42


async def test_a_job_it_cannot_run_fails_with_the_reason(pool: RunnerRedis) -> None:
    job = await pool.enqueue_job("missing")
    assert job is not None
    kinds = Kinds()
    async with wired(pool, [double], observers=[kinds]) as (_, parts):
        (claim,) = (await parts.poll.claim(1)).claims
        await parts.runner.run(JobRecord(claim))
        await parts.writer.wait_idle()
    assert kinds.seen == [JobEventKind.FAILED]
    info = await job.result_info()
    assert info is not None and not info.success
    assert "function 'missing' not found" in str(info.result)


async def sleepy(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(10)


async def test_an_async_job_past_its_timeout_fails_saying_so(pool: RunnerRedis) -> None:
    job = await pool.enqueue_job("sleepy")
    assert job is not None
    kinds = Kinds()
    async with wired(pool, [func(sleepy, timeout=0.2)], observers=[kinds]) as (_, parts):
        (claim,) = (await parts.poll.claim(1)).claims
        record = JobRecord(claim)
        await asyncio.wait_for(parts.runner.run(record), 5)
        await parts.writer.wait_idle()
    assert kinds.seen == [JobEventKind.STARTED, JobEventKind.FAILED]
    info = await job.result_info()
    assert info is not None and not info.success and isinstance(info.result, TimeoutError)
    assert "the job ran longer than its timeout of 0.2s" in str(info.result)
