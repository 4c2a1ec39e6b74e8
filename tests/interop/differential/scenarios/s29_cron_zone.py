"""A cron schedule names wall-clock times; with no zone given, runner reads them in UTC and arq in the system's
local zone. The tests run with ``TZ=Asia/Kolkata`` (UTC+05:30), so the same instant, a few seconds from now, is one
wall-clock time in UTC and another in Kolkata: of two cron jobs, one set to each, runner fires the first and arq the
second, and the other would fire hours later. The scenario waits for the first run to end (no fixed sleep)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import create_pool, cron
from arq.connections import RedisSettings
from arq.worker import Worker

DIFFERENCES = {
    "the clock a zone-less schedule is read on": {"arq": "local-clock", "runner": "utc-clock", "doc": "cron-time-zone"},
    "worker timezone": {
        "arq": {"repr": "datetime.timezone(datetime.timedelta(seconds=19800), 'IST')"},
        "runner": None,
        "doc": "cron-time-zone",
    },
}

RUNS: list[str] = []
FIRED = asyncio.Event()


async def tick(ctx: dict[str, Any]) -> None:
    return None


async def ended(ctx: dict[str, Any]) -> None:
    # after_job_end: the run is recorded, so closing the worker now does not cut it short
    RUNS.append(ctx["job_id"].rsplit(":", 1)[0])
    FIRED.set()


async def scenario(env: Any) -> None:
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    # 2-3 s ahead: time for the worker to start and schedule the jobs on a loaded machine, before the instant passes
    at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    local = at.astimezone()  # the same instant on the machine's clock (TZ)
    jobs = [
        cron(tick, name="utc-clock", hour=at.hour, minute=at.minute, second=at.second, microsecond=0),
        cron(tick, name="local-clock", hour=local.hour, minute=local.minute, second=local.second, microsecond=0),
    ]
    worker = Worker(cron_jobs=jobs, redis_pool=redis, poll_delay=0.05, handle_signals=False, after_job_end=ended)
    env.observe("worker timezone", worker.timezone)
    task = asyncio.create_task(worker.async_run())
    try:
        await asyncio.wait_for(FIRED.wait(), 15)
    except TimeoutError:
        pass
    await worker.close()
    await asyncio.wait({task}, timeout=5)
    env.observe("the clock a zone-less schedule is read on", RUNS[0] if RUNS else "neither fired")
    env.observe("one of the two fired", len(RUNS))
    await redis.aclose()
