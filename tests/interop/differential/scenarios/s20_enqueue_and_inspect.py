"""The producer side: ``enqueue_job``'s options, ``Job.status/info/result_info``, ``queued_jobs``,
``all_job_results``, ``JobDef``/``JobResult``/``JobStatus``, and the keys and TTLs they leave."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job, JobDef, JobResult, JobStatus
from arq.worker import Worker


async def add(ctx: dict[str, Any], a: int, b: int = 0) -> int:
    return a + b


DIFFERENCES = {
    "repr": {"arq": "<arq job first>", "runner": "<runner job first>", "doc": "job-repr"},
    "info's job_id before the job ran": {"arq": None, "runner": "first", "doc": "info-job-id"},
    "queued_jobs with an expired payload": {
        "arq": {
            "exception": "RuntimeError",
            "args": ['job "arq:job:gone" not found'],
            "str": 'job "arq:job:gone" not found',
        },
        "runner": ["first"],
        "doc": "expired-queued",
    },
}


def shape(record: Any) -> dict[str, Any]:
    """A JobDef/JobResult with its clock fields reduced to whether they are set."""
    out = {}
    for name, value in dataclasses.asdict(record).items():
        out[name] = type(value).__name__ if name.endswith("time") or name == "score" else value
    return out


async def scenario(env: Any) -> None:
    env.observe("JobStatus", [s.value for s in JobStatus])
    env.observe("JobStatus is a str", JobStatus.queued == "queued")
    env.observe("JobDef fields", [f.name for f in dataclasses.fields(JobDef)])
    env.observe("JobResult fields", [f.name for f in dataclasses.fields(JobResult)])
    redis = await create_pool(RedisSettings.from_dsn(env.url), expires_extra_ms=60_000)
    first = await redis.enqueue_job("add", 1, b=2, _job_id="first")
    env.observe("same id again", await redis.enqueue_job("add", 1, _job_id="first"))
    env.observe("repr", repr(first))
    later = await redis.enqueue_job("add", 3, _defer_by=timedelta(seconds=0.4), _job_id="later")
    at = await redis.enqueue_job(
        "add", 4, _defer_until=datetime.now(UTC) + timedelta(hours=1), _job_id="at", _expires=30
    )
    tried = await redis.enqueue_job("add", 5, _job_try=2, _job_id="tried", _queue_name="other")
    try:
        await redis.enqueue_job("add", _defer_by=1, _defer_until=datetime.now())
    except RuntimeError:
        env.observe("both defers is a RuntimeError", True)
    env.observe("statuses", [await j.status() for j in (first, later, at)])
    env.observe("status elsewhere", await Job("tried", redis).status())
    env.observe("status on its queue", await tried.status())
    info = shape(await first.info())
    env.observe("info's job_id before the job ran", info.pop("job_id"))
    env.observe("info", info)
    env.observe("queued_jobs", [shape(j) for j in await redis.queued_jobs()])
    env.observe("queued_jobs other", [j.job_id for j in await redis.queued_jobs(queue_name="other")])
    env.observe("keys", await env.keys())
    env.observe("no result yet", await first.result_info())
    await redis.delete("arq:job:at")  # a burst worker runs until its queue is empty, deferred jobs included
    await redis.zrem("arq:queue", "at")
    worker = Worker([add], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False)
    await worker.main()
    await worker.close()
    done = await later.result_info()
    waited = (done.start_time - done.enqueue_time).total_seconds()
    # not sooner than its 0.4 s; the upper bound is loose, for a loaded machine
    env.observe("the deferred job waited its 0.4 s, and not much more", 0.4 <= waited < 10)
    env.observe("result_info", shape(await first.result_info()))
    env.observe("info when done", shape(await first.info()))
    everything = await redis.all_job_results()
    # jobs enqueued within one millisecond tie on enqueue_time: the order is by time, the ties are the server's
    env.observe("all_job_results", sorted([r.job_id, r.result, r.success] for r in everything))
    env.observe(
        "all_job_results oldest first",
        [r.enqueue_time for r in everything] == sorted(r.enqueue_time for r in everything),
    )
    env.observe("results", [await first.result(timeout=5), await later.result(timeout=5)])
    env.observe("status done", await first.status())
    await redis.flushdb()
    await redis.enqueue_job("add", 1, _job_id="first")
    await redis.zadd("arq:queue", {"gone": 1})  # its payload expired
    try:
        env.observe("queued_jobs with an expired payload", [j.job_id for j in await redis.queued_jobs()])
    except RuntimeError as exc:
        env.observe("queued_jobs with an expired payload", exc)
    env.observe("keys after", await env.keys())
    await asyncio.sleep(0)
    await redis.aclose()
