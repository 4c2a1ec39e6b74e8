"""Item 4: two ``cron()`` jobs on one coroutine (different job ids and schedules) are one worker's jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from arq import create_pool, cron
from arq.connections import RedisSettings
from arq.worker import Worker

RUNS: list[str] = []


async def report(ctx: dict[str, Any]) -> None:
    RUNS.append(ctx["job_id"])


async def scenario(env: Any) -> None:
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    never_now = (datetime.now().hour + 12) % 24
    morning = cron(report, hour=never_now, minute=0, job_id="report:morning", run_at_startup=True)
    evening = cron(report, hour=(never_now + 1) % 24, minute=30, job_id="report:evening", run_at_startup=True)
    env.observe("names", [morning.name, evening.name])
    worker = Worker(cron_jobs=[morning, evening], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False)
    env.observe("functions", sorted(worker.functions))
    env.observe("cron jobs", len(worker.cron_jobs))
    await worker.main()
    await worker.close()
    env.observe("runs", sorted(RUNS))
    await redis.aclose()
