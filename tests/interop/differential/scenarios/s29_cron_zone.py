"""A cron schedule names wall-clock times; with no zone given, runner reads them in UTC and arq in the system's
local zone. The tests run with ``TZ=Asia/Kolkata`` (UTC+05:30), so the two fire half an hour apart; the job is
set to fire two seconds from now on UTC's clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import create_pool, cron
from arq.connections import RedisSettings
from arq.worker import Worker

DIFFERENCES = {
    "ran within 4 s": {"arq": 0, "runner": 1, "doc": "cron-time-zone"},
    "worker timezone": {
        "arq": {"repr": "datetime.timezone(datetime.timedelta(seconds=19800), 'IST')"},
        "runner": None,
        "doc": "cron-time-zone",
    },
}

RUNS: list[str] = []


async def tick(ctx: dict[str, Any]) -> None:
    RUNS.append(ctx["job_id"])


async def scenario(env: Any) -> None:
    at = datetime.now(UTC) + timedelta(seconds=2)
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    job = cron(tick, hour=at.hour, minute=at.minute, second=at.second, microsecond=0)
    worker = Worker(cron_jobs=[job], redis_pool=redis, poll_delay=0.05, handle_signals=False)
    env.observe("worker timezone", worker.timezone)
    task = asyncio.create_task(worker.async_run())
    await asyncio.sleep(4)
    await worker.close()
    await asyncio.wait({task}, timeout=5)
    env.observe("ran within 4 s", len(RUNS))
    await redis.aclose()
