"""Item 10: job events reach logging set up on arq's logger names, at arq's levels; a failed job is logged at
ERROR with its traceback and its exception's ``extra()``, as error trackers expect."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Retry, Worker, func


class PaymentDeclined(Exception):
    def extra(self) -> dict[str, Any]:
        return {"order": 42}


async def ok(ctx: dict[str, Any]) -> str:
    return "fine"


async def declined(ctx: dict[str, Any]) -> None:
    raise PaymentDeclined("card declined")


async def slow(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(5)


async def again(ctx: dict[str, Any]) -> None:
    if ctx["job_try"] == 1:
        raise Retry(defer=0.01)


async def scenario(env: Any) -> None:
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    for name in ("ok", "declined", "slow", "again", "unknown"):
        await redis.enqueue_job(name, _job_id=name)
    functions = [ok, declined, func(slow, timeout=0.2), again]
    worker = Worker(functions, redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False, max_jobs=1)
    await worker.main()
    await worker.close()
    rows = env.job_log()
    # the same events, whatever order jobs enqueued within one millisecond were taken in
    env.observe("events", sorted((row[1:] for row in rows), key=repr))
    env.observe("logger names", sorted({row[0] for row in rows}))
    errors = [r for r in env.records() if r.levelno >= logging.ERROR]
    env.observe("errors carry their exception", [type(r.exc_info[1]).__name__ for r in errors if r.exc_info])

    # a level set on arq's logger silences the INFO lines
    logging.getLogger("arq").setLevel(logging.WARNING)
    before = len(env.records())
    await redis.enqueue_job("ok")
    quiet = Worker([ok], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False)
    await quiet.main()
    await quiet.close()
    env.observe("records once arq's logger is at WARNING", len(env.records()) - before)
    await redis.aclose()
