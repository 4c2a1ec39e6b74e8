"""Runs inside the arq venv: settings for the real ``arq`` CLI in the interop tests.

The functions mirror ``tests/interop/runner_jobs.py`` name for name, so both directions run the same scenarios.
This file must not import runner.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Retry, func


async def add(ctx: dict[str, Any], a: int, b: int, *, c: int = 0) -> int:
    return a + b + c


async def whoami(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"job_id": ctx["job_id"], "job_try": ctx["job_try"], "score": ctx["score"], "worker": "arq"}


async def fail(ctx: dict[str, Any], message: str) -> None:
    raise ValueError(message)


async def retry_twice(ctx: dict[str, Any]) -> int:
    if ctx["job_try"] < 3:
        raise Retry(defer=0.05)
    return int(ctx["job_try"])


async def always_retry(ctx: dict[str, Any]) -> None:
    raise Retry(defer=0.01)


async def hold(ctx: dict[str, Any], gate: str, *extra: Any, **options: Any) -> str:
    # runs until the test sets the gate key, so the test sees it in progress for as long as it needs
    while True:
        if await ctx["redis"].exists(gate):
            return "released"
        await asyncio.sleep(0.01)


async def count(ctx: dict[str, Any]) -> str:
    await ctx["redis"].incr(f"ran:{ctx['job_id']}")
    await asyncio.sleep(0.02)
    return "arq"


async def no_result(ctx: dict[str, Any]) -> str:
    return "dropped"


class WorkerSettings:
    functions = [
        add,
        whoami,
        fail,
        retry_twice,
        func(always_retry, max_tries=2),
        hold,
        func(no_result, keep_result=0),
        count,
    ]
    redis_settings = RedisSettings.from_dsn(os.environ["INTEROP_REDIS_URL"])
    queue_name = os.environ.get("INTEROP_QUEUE_NAME", "arq:queue")
    poll_delay = 0.02
    allow_abort_jobs = True
    job_timeout = 60
    max_tries = 5
