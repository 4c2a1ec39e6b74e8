"""The poll loop (runner/engine/poll.py): claims with a holder token, and a resent claim hands the jobs over."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import redis.asyncio as aioredis

from runner import Worker
from runner.engine import scripts
from runner.engine.client import RunnerRedis
from tests.support.parts import wired


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def sleepy(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(0.05)


async def test_a_claim_resent_after_a_lost_reply_hands_over_the_same_jobs(pool: RunnerRedis) -> None:
    for _ in range(3):
        await pool.enqueue_job("noop")
    async with wired(pool, [noop]) as (_, parts):
        first = await parts.poll.claim(2)
        assert len(first.claims) == 2
        assert first.next_due_ms is None  # a full claim does not look further
        parts.poll._token = first.claims[0].token  # as after a call whose reply was lost
        again = await parts.poll.claim(2)
        assert [(c.job_id, c.job_try, c.token) for c in again.claims] == [
            (c.job_id, c.job_try, c.token) for c in first.claims
        ]
        fresh = await parts.poll.claim(2)  # a new call: the third job, under a new token
        assert len(fresh.claims) == 1
        assert fresh.claims[0].token != first.claims[0].token
        holder = await pool.get(pool.key_layout.in_progress("arq:queue", fresh.claims[0].job_id))
        assert holder == fresh.claims[0].token.encode()


async def test_start_puts_a_record_in_the_registry_until_its_job_ends(pool: RunnerRedis) -> None:
    job = await pool.enqueue_job("noop")
    assert job is not None
    async with wired(pool, [noop]) as (worker, parts):
        (claim,) = (await parts.poll.claim(1)).claims
        record = parts.poll.start(claim)
        assert worker.running.get(job.job_id) is record
        assert record.task is not None
        await record.task
        await parts.writer.wait_idle()
        assert len(worker.running) == 0
        assert worker.counts.started == 1
    assert await job.result(timeout=5) is None


async def test_the_claim_after_a_job_ends_reaches_redis_before_that_jobs_outcome(
    pool: RunnerRedis, redis_url: str
) -> None:
    # with every slot taken, a job's end frees one: the next claim goes first, and the outcome right after it,
    # so Redis answers the claim without applying the outcome first (outcomes.py, OutcomeWriter.defer)
    for _ in range(3):
        await pool.enqueue_job("sleepy")
    claim_sha, finish_sha = (hashlib.sha1(s.encode()).hexdigest().encode() for s in (scripts.CLAIM, scripts.FINISH))
    seen: list[bytes] = []
    monitor = aioredis.Redis.from_url(redis_url)
    async with monitor.monitor() as commands:

        async def record() -> None:
            async for command in commands.listen():
                text = command["command"].encode()
                for sha, name in ((claim_sha, b"claim"), (finish_sha, b"finish")):
                    if sha in text:
                        seen.append(name)

        recorder = asyncio.create_task(record())
        worker = Worker([sleepy], redis_pool=pool, burst=True, handle_signals=False, max_jobs=1, poll_delay=0.05)
        await worker.async_run()
        await asyncio.sleep(0.2)
        recorder.cancel()
    await monitor.aclose()
    assert worker.jobs_complete == 3
    # claim (job 1), claim (job 2) then job 1's outcome, claim (job 3) then job 2's, ...
    assert seen[:5] == [b"claim", b"claim", b"finish", b"claim", b"finish"], seen
