"""Item 18: ``await worker.close()`` on a running worker stops it cleanly, with its own pool or a given one;
its running job goes back to the queue."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker


async def slow(ctx: dict[str, Any]) -> None:
    ctx["started"].set()
    await asyncio.sleep(30)


async def run(env: Any, label: str, **where: Any) -> None:
    started = asyncio.Event()
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    job = await redis.enqueue_job("slow", _job_id=f"slow-{label}")
    worker = Worker([slow], poll_delay=0.05, handle_signals=False, ctx={"started": started}, **where)
    task = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(worker.close(), 10)
    await asyncio.wait({task}, timeout=5)
    env.observe(f"{label}: the run has ended", task.done())
    env.observe(f"{label}: ended without an error", task.cancelled() or task.exception() is None)
    env.observe(f"{label}: job status", await job.status())
    env.observe(f"{label}: job back in the queue", await redis.zscore("arq:queue", job.job_id) is not None)
    env.observe(f"{label}: counts", [worker.jobs_complete, worker.jobs_failed, worker.jobs_retried])
    env.observe(f"{label}: health key gone", await redis.exists(worker.health_check_key) == 0)
    env.observe(f"{label}: pool usable", await redis.ping())
    await redis.delete("arq:queue", f"arq:job:slow-{label}", f"arq:retry:slow-{label}")
    await redis.aclose()


async def stopped_by_handle_sig(env: Any) -> None:
    """arq users' tests stop a worker with ``handle_sig``: it ends the run, the job goes back to the queue."""
    started = asyncio.Event()
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    job = await redis.enqueue_job("slow", _job_id="slow-signalled")
    worker = Worker([slow], redis_pool=redis, poll_delay=0.05, handle_signals=False, ctx={"started": started})
    task = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(started.wait(), 5)
    worker.handle_sig(signal.SIGINT)
    await asyncio.wait({task}, timeout=5)
    env.observe("handle_sig: the run has ended", task.done())
    env.observe("handle_sig: job back in the queue", await redis.zscore("arq:queue", job.job_id) is not None)
    env.observe("handle_sig: counts", [worker.jobs_complete, worker.jobs_failed, worker.jobs_retried])
    with contextlib.suppress(asyncio.CancelledError):  # arq's close() after handle_sig re-raises the job's cancel
        await worker.close()
    await redis.delete("arq:queue", "arq:job:slow-signalled", "arq:retry:slow-signalled")
    await redis.aclose()


async def scenario(env: Any) -> None:
    await stopped_by_handle_sig(env)
    await run(env, "own pool", redis_settings=RedisSettings.from_dsn(env.url))
    given = await create_pool(RedisSettings.from_dsn(env.url))
    await run(env, "given pool", redis_pool=given)
    env.observe("given pool usable after close", await given.ping())
    await given.aclose()
