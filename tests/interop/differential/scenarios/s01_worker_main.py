"""Item 1: ``await worker.main()`` runs a burst worker, as arq users' own tests drive one; the pool stays open."""

from __future__ import annotations

from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def scenario(env: Any) -> None:
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    job = await redis.enqueue_job("add", 2, 3)
    env.observe("status before", await job.status())
    worker = Worker([add], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False)
    env.observe("main returns", await worker.main())
    env.observe("result", await job.result(timeout=5))
    env.observe("status after", await job.status())
    env.observe("counts", [worker.jobs_complete, worker.jobs_failed, worker.jobs_retried])
    env.observe("pool still answers after main", await redis.ping())
    env.observe("keys after main", await env.keys())
    await worker.close()
    env.observe("keys after close", await env.keys())
    env.observe("log", env.job_log())
    await redis.aclose()
