"""Item 17: ``Job.result(pole_delay=...)``, arq's deprecated spelling, still works and warns."""

from __future__ import annotations

import warnings
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def scenario(env: Any) -> None:
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    job = await redis.enqueue_job("add", 1, 1)
    worker = Worker([add], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False)
    await worker.main()
    await worker.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env.observe("result", await job.result(timeout=5, pole_delay=0.05))
    env.observe("warnings", [w.category.__name__ for w in caught])
    await redis.aclose()
