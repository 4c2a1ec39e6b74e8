"""Item 9: ``JobExecutionFailed`` compares by its arguments, so a stored failure equals the expected one."""

from __future__ import annotations

from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from arq.worker import JobExecutionFailed, Worker, func


async def flaky(ctx: dict[str, Any]) -> None:
    raise ValueError("try again")


async def scenario(env: Any) -> None:
    env.observe("equal", JobExecutionFailed("x") == JobExecutionFailed("x"))
    env.observe("unequal", JobExecutionFailed("x") == JobExecutionFailed("y"))
    env.observe("not equal to another type", JobExecutionFailed("x") == RuntimeError("x"))
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    missing = await redis.enqueue_job("missing")
    tired = await redis.enqueue_job("flaky", _job_try=3)
    await redis.psetex("arq:job:gone", 1, b"")  # an entry whose payload expired before it ran
    await redis.zadd("arq:queue", {"gone": 1})
    worker = Worker([func(flaky, max_tries=2)], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False)
    await worker.main()
    await worker.close()
    for name, job in (("unknown function", missing), ("out of tries", tired), ("expired", Job("gone", redis))):
        try:
            await job.result(timeout=5)
        except JobExecutionFailed as exc:
            env.observe(name, exc)
            env.observe(f"{name} equals a new one", exc == JobExecutionFailed(*exc.args))
    env.observe("counts", [worker.jobs_complete, worker.jobs_failed, worker.jobs_retried])
    env.observe("log", env.job_log())
    await redis.aclose()
