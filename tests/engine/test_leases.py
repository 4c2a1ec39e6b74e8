"""The lease keeper (runner/engine/leases.py): heartbeats with each claim's token, aborts, overdue jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from runner.engine.client import RunnerRedis
from runner.engine.protocol import Claim
from runner.engine.records import DecodedJob, JobRecord, JobState
from tests.support.parts import wired

Q = "arq:queue"


async def noop(ctx: dict[str, Any]) -> None:
    return None


def running_record(job_id: str, enqueue_ms: int) -> JobRecord:
    record = JobRecord(Claim(job_id, 1, b"p", 1, 0, f"token-{job_id}"))
    record.job = DecodedJob("noop", (), {}, None, enqueue_ms)
    record.task = asyncio.create_task(asyncio.sleep(30))
    return record


async def test_aborts_cancel_their_job_and_stale_ones_are_forgotten(pool: RunnerRedis) -> None:
    async with wired(pool, [noop], allow_abort_jobs=True) as (worker, parts):
        fresh, old, untouched = running_record("a", 1000), running_record("b", 5000), running_record("c", 1000)
        for record in (fresh, old, untouched):
            worker.running.add(record)
        await pool.zadd(pool.key_layout.abort(Q), {"a": 2000, "b": 2000})  # b's abort predates its job
        await parts.leases.cancel_aborted()
        assert fresh.task is not None
        await asyncio.gather(fresh.task, return_exceptions=True)
        assert (fresh.state, old.state, untouched.state) == (JobState.ABORTING, JobState.RUNNING, JobState.RUNNING)
        assert fresh.task is not None and fresh.task.cancelled()
        assert untouched.task is not None and not untouched.task.cancelled()
        assert await pool.zrange(pool.key_layout.abort(Q), 0, -1) == [b"a"]
        for record in (old, untouched):
            record.cancel()


async def test_overdue_jobs_are_cancelled_and_heartbeats_carry_each_token(pool: RunnerRedis) -> None:
    async with wired(pool, [noop]) as (worker, parts):
        late, finishing = running_record("a", 1), running_record("b", 1)
        late.deadline = asyncio.get_running_loop().time() - 5
        finishing.state = JobState.FINISHING
        worker.running.add(late)
        worker.running.add(finishing)
        parts.leases.enforce_timeouts()
        assert late.state is JobState.TIMED_OUT
        assert parts.leases.claims() == (["a"], ["b"])
        keys, args = parts.leases.request(["a"], ["b"])
        prefix = pool.key_layout.in_progress_prefix(Q)
        assert keys == [pool.key_layout.queue(Q), prefix + "a", prefix + "b"]
        assert args[1:] == [worker.lease_ms, 1, "a", "token-a", "b", "token-b"]
        for record in (late, finishing):
            record.cancel()
