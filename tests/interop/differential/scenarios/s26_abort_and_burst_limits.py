"""``Job.abort`` of a queued and of a running job (``allow_abort_jobs``), ``max_burst_jobs``, and the ctx a job
gets."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

SEEN: list[Any] = []


async def slow(ctx: dict[str, Any]) -> None:
    ctx["started"].set()
    await asyncio.sleep(10)


async def show(ctx: dict[str, Any], n: int) -> int:
    SEEN.append(sorted(k for k in ctx if k != "started"))
    SEEN.append([type(ctx["enqueue_time"]).__name__, ctx["job_try"], isinstance(ctx["score"], int)])
    return n


async def scenario(env: Any) -> None:
    started = asyncio.Event()
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    queued = await redis.enqueue_job("show", 1, _defer_by=60)
    running = await redis.enqueue_job("slow")
    worker = Worker(
        [slow, show],
        redis_pool=redis,
        poll_delay=0.05,
        handle_signals=False,
        allow_abort_jobs=True,
        ctx={"started": started},
    )
    task = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(started.wait(), 5)
    env.observe("abort running", await running.abort(timeout=5, poll_delay=0.05))
    env.observe("abort deferred", await queued.abort(timeout=5, poll_delay=0.05))
    for job in (running, queued):
        try:
            await job.result(timeout=1)
        except asyncio.CancelledError:
            env.observe(f"{job.job_id == running.job_id and 'running' or 'deferred'} result", "CancelledError")
    env.observe("abort of a finished job", await running.abort(timeout=1, poll_delay=0.05))
    await worker.close()
    await asyncio.wait({task}, timeout=5)
    env.observe("counts", [worker.jobs_complete, worker.jobs_failed, worker.jobs_retried])
    env.observe("log", sorted(env.job_log(), key=repr))

    await redis.flushdb()
    for n in range(5):
        await redis.enqueue_job("show", n)
    limited = Worker([show], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False, max_burst_jobs=2)
    await limited.main()
    await limited.close()
    env.observe("max_burst_jobs", [limited.jobs_complete, await redis.zcard("arq:queue")])
    env.observe("ctx", SEEN[:2])
    await redis.aclose()
