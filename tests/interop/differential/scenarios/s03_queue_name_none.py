"""Item 3: ``Worker(queue_name=None, redis_pool=pool)`` listens on the pool's default queue."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def scenario(env: Any) -> None:
    redis = await create_pool(RedisSettings.from_dsn(env.url), default_queue_name="custom:queue")
    job = await redis.enqueue_job("add", 1, 2)
    env.observe("queued on", await redis.zrange("custom:queue", 0, -1) == [job.job_id.encode()])
    worker = Worker([add], queue_name=None, redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False)
    env.observe("worker queue", worker.queue_name)
    env.observe("health key", worker.health_check_key)
    await asyncio.wait_for(worker.main(), 5)
    env.observe("result", await job.result(timeout=5))
    await worker.close()
    try:
        Worker([add], queue_name=None)
    except ValueError as exc:
        env.observe("no queue and no pool", exc)
    await redis.aclose()
