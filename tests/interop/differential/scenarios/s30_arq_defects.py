"""arq defects runner does not have (docs: the arq-defects table): each shown on both sides."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.utils import timestamp_ms
from arq.worker import Worker, func

DIFFERENCES = {
    # arq #531: SET ... PX 0 for a result kept forever of a job that failed before it started
    "keep_result_forever with an early failure": {
        "arq": "ResponseError: invalid expire time",
        "runner": "stored, no expiry: -1",
        "doc": "arq-defects",
    },
    # arq #485: an abort asked long before a job with the same id was enqueued still aborts it
    "a stale abort": {"arq": "CancelledError", "runner": "ran: 2", "doc": "arq-defects"},
    # arq #417: the function's keep_result=0 is ignored when the job fails before it starts
    "early failure of a keep_result=0 function": {"arq": 1, "runner": 0, "doc": "arq-defects"},
    # job_timeout=None: max() of two None timeouts
    "job_timeout=None with two functions": {
        "arq": "TypeError",
        "runner": "built",
        "doc": "arq-defects",
    },
}


async def double(ctx: dict[str, Any], n: int) -> int:
    return 2 * n


async def scenario(env: Any) -> None:
    redis = await create_pool(RedisSettings.from_dsn(env.url))

    await redis.enqueue_job("missing", _job_id="early")
    forever = Worker(
        [double], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False, keep_result_forever=True
    )
    try:
        await asyncio.wait_for(forever.main(), 5)
        ttl = await redis.pttl("arq:result:early")
        env.observe("keep_result_forever with an early failure", f"stored, no expiry: {ttl}")
    except Exception as exc:
        env.observe(
            "keep_result_forever with an early failure",
            f"{type(exc).__name__}: invalid expire time" if "invalid expire time" in str(exc) else repr(exc),
        )
    try:
        await forever.close()
    except Exception:
        pass

    await redis.flushdb()
    await redis.zadd("arq:abort", {"reused": timestamp_ms() - 60_000})
    job = await redis.enqueue_job("double", 1, _job_id="reused")
    aborting = Worker(
        [double], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False, allow_abort_jobs=True
    )
    await aborting.main()
    await aborting.close()
    try:
        env.observe("a stale abort", f"ran: {await job.result(timeout=5)}")
    except asyncio.CancelledError:
        env.observe("a stale abort", "CancelledError")

    await redis.flushdb()
    await redis.enqueue_job("quiet", _job_try=9)
    quiet = Worker(
        [func(double, name="quiet", keep_result=0)], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False
    )
    await quiet.main()
    await quiet.close()
    env.observe("early failure of a keep_result=0 function", len(await redis.keys("arq:result:*")))

    try:
        Worker([double, func(double, name="other")], redis_pool=redis, job_timeout=None, handle_signals=False)
        env.observe("job_timeout=None with two functions", "built")
    except TypeError:
        env.observe("job_timeout=None with two functions", "TypeError")
    await redis.aclose()
