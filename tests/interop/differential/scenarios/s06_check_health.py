"""Item 6: ``check_health(WorkerSettings)`` takes a settings class, as arq's does; ``async_check_health`` too.

``check_health`` runs its own event loop, so it is called from a thread here, as a health probe process would.
"""

from __future__ import annotations

import asyncio
from typing import Any

from arq import check_health as top_level_check_health
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker, async_check_health, check_health


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def scenario(env: Any) -> None:
    class WorkerSettings:
        functions = [noop]
        redis_settings = RedisSettings.from_dsn(env.url)
        queue_name = "health:queue"

    env.observe("the same function", top_level_check_health is check_health)
    env.observe("before any worker", await asyncio.to_thread(check_health, WorkerSettings))
    worker = Worker(
        [noop],
        redis_settings=WorkerSettings.redis_settings,
        queue_name="health:queue",
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
    )
    await worker.main()
    env.observe("after a burst, before close", await asyncio.to_thread(check_health, WorkerSettings))
    redis = await create_pool(WorkerSettings.redis_settings)
    raw = await redis.get("health:queue:health-check")
    # "Dec-01 23:15:13 j_complete=0 ...": the fields after the clock
    env.observe("health line", raw.decode().split(" ", 2)[2])
    # within a few seconds: the two sides read the key at different moments after writing it
    env.observe_time("health TTL", await redis.pttl("health:queue:health-check") / 1000, 5)
    env.observe("async_check_health", await async_check_health(WorkerSettings.redis_settings, None, "health:queue"))
    env.observe("async_check_health, other queue", await async_check_health(WorkerSettings.redis_settings, None, "x"))
    await worker.close()
    env.observe("after close", await asyncio.to_thread(check_health, WorkerSettings))
    env.observe("check levels", [r.levelname for r in env.records("arq.worker") if "ealth check" in r.getMessage()])
    await redis.aclose()
