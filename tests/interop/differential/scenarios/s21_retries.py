"""``Retry`` (with and without a delay), ``max_tries``, ``RetryJob``, ``retry_jobs=False``, and ``job_try``."""

from __future__ import annotations

import time
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Retry, RetryJob, Worker, func

TRIES: dict[str, list[int]] = {}


async def flaky(ctx: dict[str, Any], name: str, defer: float) -> str:
    TRIES.setdefault(name, []).append(ctx["job_try"])
    if ctx["job_try"] < 3:
        raise Retry(defer=defer)
    return f"{name} on try {ctx['job_try']}"


async def stubborn(ctx: dict[str, Any]) -> None:
    TRIES.setdefault("stubborn", []).append(ctx["job_try"])
    raise Retry(defer=0.01)


async def again(ctx: dict[str, Any]) -> str:
    TRIES.setdefault("again", []).append(ctx["job_try"])
    if ctx["job_try"] == 1:
        raise RetryJob()
    return "ran again"


async def scenario(env: Any) -> None:
    env.observe("Retry repr", [repr(Retry(5)), str(Retry()), Retry(defer=1.5).defer_score, Retry().defer_score])
    env.observe("RetryJob", [str(RetryJob()), isinstance(RetryJob(), RuntimeError)])
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    quick = await redis.enqueue_job("flaky", "quick", 0)
    paced = await redis.enqueue_job("flaky", "paced", 0.2)
    tired = await redis.enqueue_job("stubborn")
    rerun = await redis.enqueue_job("again")
    started = time.time()
    worker = Worker(
        [flaky, func(stubborn, max_tries=2), again], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False
    )
    await worker.main()
    await worker.close()
    took = time.time() - started
    # two retries 0.2 s apart: not sooner, and not much later (the comparison across the two runs is loose, so a
    # loaded machine does not fail it; the bounds are what proves the delay)
    env.observe("paced retries waited their delays", 0.4 <= took < 5)
    env.observe_time("paced retries took", took, 1.5)
    env.observe(
        "results", [await quick.result(timeout=5), await paced.result(timeout=5), await rerun.result(timeout=5)]
    )
    try:
        await tired.result(timeout=5)
    except Exception as exc:
        env.observe("out of tries", exc)
    env.observe("tries", TRIES)
    env.observe("counts", [worker.jobs_complete, worker.jobs_failed, worker.jobs_retried])
    env.observe("retry keys left", await env.keys("arq:retry:*"))

    strict = await redis.enqueue_job("flaky", "strict", 0)
    no_retry = Worker([flaky], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False, retry_jobs=False)
    await no_retry.main()
    await no_retry.close()
    try:
        await strict.result(timeout=5)
    except Retry as exc:
        env.observe("retry_jobs=False stores the Retry", [repr(exc), exc.defer_score])
    env.observe("log", sorted(env.job_log(), key=repr))
    await redis.aclose()
