"""The runner worker's side of the interop scenarios: ``arq_side/arq_worker_settings``'s functions, name for name."""

from __future__ import annotations

import asyncio
from typing import Any

from runner import Retry, func


async def add(ctx: dict[str, Any], a: int, b: int, *, c: int = 0) -> int:
    return a + b + c


async def whoami(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"job_id": ctx["job_id"], "job_try": ctx["job_try"], "score": ctx["score"], "worker": "runner"}


async def fail(ctx: dict[str, Any], message: str) -> None:
    raise ValueError(message)


async def retry_twice(ctx: dict[str, Any]) -> int:
    if ctx["job_try"] < 3:
        raise Retry(defer=0.05)
    return int(ctx["job_try"])


async def always_retry(ctx: dict[str, Any]) -> None:
    raise Retry(defer=0.01)


# gates the tests have opened; the runner Worker runs in the test's own process and event loop
RELEASED: set[str] = set()


async def hold(ctx: dict[str, Any], gate: str, *extra: Any, **options: Any) -> str:
    # runs until the test opens the gate, so the test sees it in progress for as long as it needs. It waits
    # with plain asyncio.sleep, not a Redis call: on Python 3.11 redis-py's wait_for around socket writes can
    # swallow a task.cancel() that lands mid-command, which would make an abort flaky for reasons of its own
    while True:
        if gate in RELEASED:
            return "released"
        await asyncio.sleep(0.005)


async def count(ctx: dict[str, Any]) -> str:
    # counts runs per job id, so a test can prove no job ran twice when two kinds of worker share a queue
    await ctx["redis"].incr(f"ran:{ctx['job_id']}")
    await asyncio.sleep(0.02)
    return "runner"


async def no_result(ctx: dict[str, Any]) -> str:
    return "dropped"


async def unpicklable(ctx: dict[str, Any]) -> Any:
    return lambda: None


FUNCTIONS = [
    add,
    whoami,
    fail,
    retry_twice,
    func(always_retry, max_tries=2),
    hold,
    func(no_result, keep_result=0),
    unpicklable,
    count,
]
