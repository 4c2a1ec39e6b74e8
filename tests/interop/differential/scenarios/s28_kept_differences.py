"""The differences runner keeps on purpose, each asserted: leases instead of arq's in-progress timeout, the
version, and the names of the loggers (arq's names are honoured, see s10)."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import VERSION, create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, logger

DIFFERENCES = {
    # a claim lives lease seconds (10) and is renewed while the job runs; arq's lives the longest timeout + 10 s
    "in-progress TTL while running": {"arq": 310, "runner": 10, "doc": "leases"},
    "version": {"arq": "0.28.0", "runner": "0.1.0", "doc": "version"},
    "worker logger": {"arq": "arq.worker", "runner": "runner.worker", "doc": "logger-names"},
}


async def slow(ctx: dict[str, Any]) -> None:
    ctx["started"].set()
    await asyncio.sleep(10)


async def scenario(env: Any) -> None:
    env.observe("version", VERSION)
    env.observe("worker logger", logger.name)
    started = asyncio.Event()
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    job = await redis.enqueue_job("slow")
    worker = Worker([slow], redis_pool=redis, poll_delay=0.05, handle_signals=False, ctx={"started": started})
    task = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(started.wait(), 5)
    env.observe("in-progress TTL while running", round(await redis.pttl("arq:in-progress:" + job.job_id) / 1000))
    env.observe("status while running", await job.status())
    await worker.close()
    await asyncio.wait({task}, timeout=5)
    await redis.aclose()
