"""Item 2: a burst worker runs its ``run_at_startup`` cron job every time (arq: always; runner 0.1: rarely)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from arq import create_pool, cron
from arq.connections import RedisSettings
from arq.worker import Worker

RUNS: list[str] = []

# arq keeps a cron job's in-progress key for a minute after it ends; runner refuses the occurrence's id instead
DIFFERENCES = {
    "in-progress keys left by the cron runs": {"arq": 5, "runner": 0, "doc": "cron-in-progress"},
}


async def tick(ctx: dict[str, Any]) -> None:
    RUNS.append(ctx["job_id"].rsplit(":", 1)[0])


async def scenario(env: Any) -> None:
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    never_now = (datetime.now().hour + 12) % 24  # no scheduled occurrence during the test
    for _ in range(5):
        job = cron(tick, hour=never_now, minute=0, run_at_startup=True)
        worker = Worker(cron_jobs=[job], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False)
        await worker.main()
        await worker.close()
    env.observe("runs", RUNS)
    in_progress = [k for k in await redis.keys("arq:in-progress:*")]
    env.observe("in-progress keys left by the cron runs", len(in_progress))
    env.observe("results kept (cron keep_result is 0)", len(await redis.keys("arq:result:*")))
    env.observe("queue empty", await redis.zcard("arq:queue"))
    await redis.aclose()
