"""Results: ``keep_result`` (0: none), ``keep_result_forever``, an unserializable result, a timeout, and
``run_check``'s ``FailedJobs``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import ResultNotFound, SerializationError
from arq.worker import FailedJobs, Worker, func

# a timed-out job's TimeoutError says which limit it hit; arq's carries no message
DIFFERENCES = {
    "timeout": {
        "arq": {"exception": "TimeoutError", "args": [], "str": ""},
        "runner": {
            "exception": "TimeoutError",
            "args": ["the job ran longer than its timeout of 0.1s"],
            "str": "the job ran longer than its timeout of 0.1s",
        },
        "doc": "timeout-message",
    },
    "run_check without burst": {"arq": "still running after 1 s", "runner": 1, "doc": "run-check-burst"},
}


async def value(ctx: dict[str, Any], v: int) -> int:
    return v


async def lock(ctx: dict[str, Any]) -> Any:
    return threading.Lock()


async def slow(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(5)


async def boom(ctx: dict[str, Any], n: int) -> None:
    raise ValueError(f"boom {n}")


async def scenario(env: Any) -> None:
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    kept = await redis.enqueue_job("value", 1)
    dropped = await redis.enqueue_job("dropped", 2)
    forever = await redis.enqueue_job("forever", 3)
    locked = await redis.enqueue_job("lock")
    timed = await redis.enqueue_job("slow")
    functions = [
        value,
        func(value, name="dropped", keep_result=0),
        func(value, name="forever", keep_result_forever=True),
        lock,
        func(slow, timeout=0.1),
    ]
    worker = Worker(functions, redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False, keep_result=100)
    await worker.main()
    await worker.close()
    env.observe("kept", await kept.result(timeout=5))
    try:
        await dropped.result(timeout=5)
    except ResultNotFound as exc:
        env.observe("keep_result=0", exc)
    env.observe("dropped status", await dropped.status())
    env.observe("forever", await forever.result(timeout=5))
    try:
        await locked.result(timeout=5)
    except SerializationError as exc:
        env.observe("unserializable result", exc)
    try:
        await timed.result(timeout=5)
    except TimeoutError as exc:
        env.observe("timeout", exc)
    ttls = [ttl for _, _, ttl in await env.keys("arq:result:*")]
    env.observe("ttls", sorted(ttls, key=lambda ttl: -1 if ttl == -1 else ttl["seconds"]))
    env.observe("counts", [worker.jobs_complete, worker.jobs_failed])
    try:
        await redis.enqueue_job("nothing")
        await Worker([value], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False).main()
    except Exception as exc:
        env.observe("main never raises for a failed job", exc)

    await redis.flushdb()
    for n in (1, 2):
        await redis.enqueue_job("boom", n, _job_id=f"boom{n}")
    checked = Worker([boom], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False)
    try:
        await checked.run_check()
    except FailedJobs as exc:
        env.observe("FailedJobs", [exc.count, sorted(str(exc).splitlines()), len(exc.job_results)])
    await checked.close()
    await redis.flushdb()
    await redis.enqueue_job("boom", 3)
    single = Worker([boom], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False)
    try:
        await single.run_check()
    except FailedJobs as exc:
        env.observe("one FailedJobs", [str(exc), repr(exc)])
    await single.close()
    await redis.enqueue_job("value", 7)
    fine = Worker([value], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False, max_burst_jobs=5)
    env.observe("run_check count", await fine.run_check())
    await fine.close()
    last = await redis.enqueue_job("value", 8)
    endless = Worker([value], redis_pool=redis, poll_delay=0.05, handle_signals=False)
    checking = asyncio.create_task(endless.run_check())
    await last.result(timeout=10)
    # the queue is empty now: a burst run ends within a poll; the second is only there to tell "still running"
    await asyncio.wait({checking}, timeout=1)
    if checking.done():
        env.observe("run_check without burst", checking.result())
    else:
        env.observe("run_check without burst", "still running after 1 s")
    await endless.close()
    await asyncio.wait({checking}, timeout=5)
    await redis.aclose()
