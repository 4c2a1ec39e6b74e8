"""Settings classes: ``get_kwargs``, ``create_worker``, ``run_worker`` and the synchronous ``Worker.run()``."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import run_worker
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker, create_worker, get_kwargs

DONE: list[Any] = []


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    DONE.append(a + b)
    return a + b


async def shutdown(ctx: dict[str, Any]) -> None:
    DONE.append("shutdown")


def enqueue(url: str, *args: Any) -> None:
    async def go() -> None:
        redis = await create_pool(RedisSettings.from_dsn(url))
        await redis.enqueue_job("add", *args)
        await redis.aclose()

    asyncio.run(go())


def scenario(env: Any) -> None:
    class Base:
        max_jobs = 3

    class WorkerSettings(Base):
        functions = [add]
        redis_settings = RedisSettings.from_dsn(env.url)
        burst = True
        poll_delay = 0.05
        handle_signals = False
        on_shutdown = shutdown
        not_a_worker_option = "ignored"

    kwargs = get_kwargs(WorkerSettings)
    env.observe("get_kwargs", sorted(kwargs))
    env.observe("get_kwargs of a dict", sorted(get_kwargs({"functions": [add], "bogus": 1, "max_jobs": 2})))
    worker = create_worker(WorkerSettings, max_jobs=7)
    env.observe("create_worker", [type(worker).__name__, worker.max_jobs, worker.burst, sorted(worker.functions)])
    enqueue(env.url, 1, 2)
    returned = run_worker(WorkerSettings)
    env.observe("run_worker returns the worker", isinstance(returned, Worker))
    env.observe("after run_worker", list(DONE))
    env.observe("run_worker counts", returned.jobs_complete)
    enqueue(env.url, 3, 4)
    plain = Worker(
        [add],
        redis_settings=RedisSettings.from_dsn(env.url),
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        on_shutdown=shutdown,
    )
    plain.run()
    env.observe("after Worker.run", DONE[-2:])
