"""Flow control on a real server: priorities, caps, rate limits, groups, dedup modes (runner/engine/flow.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from runner import RunnerRedis, Worker, func
from runner.engine.job import JobStatus
from runner.errors import InvalidArgument


class Recorder:
    """Jobs note what they ran and how many ran at once."""

    def __init__(self) -> None:
        self.order: list[Any] = []
        self.running = 0
        self.most = 0

    async def job(self, ctx: dict[str, Any], tag: Any = None, pause: float = 0.0) -> Any:
        self.running += 1
        self.most = max(self.most, self.running)
        self.order.append(tag)
        try:
            await asyncio.sleep(pause)
        finally:
            self.running -= 1
        return tag


async def test_priority_runs_higher_first_fifo_within(pool: RunnerRedis, make_worker: Callable[..., Worker]) -> None:
    rec = Recorder()
    worker = make_worker([func(rec.job, name="job")], max_jobs=1)
    for i in range(5):
        await pool.enqueue_job("job", f"low{i}", _priority=-1)
    for i in range(3):
        await pool.enqueue_job("job", f"plain{i}")
    for i in range(3):
        await pool.enqueue_job("job", f"high{i}", _priority=5)
    await worker.async_run()
    high, plain, low = rec.order[:3], rec.order[3:6], rec.order[6:]
    assert high == [f"high{i}" for i in range(3)]  # flow jobs: FIFO by an order counter
    # plain jobs are arq's: ordered by their enqueue millisecond, so two enqueued in the same one tie (as in arq)
    assert sorted(plain) == [f"plain{i}" for i in range(3)]
    assert low == [f"low{i}" for i in range(5)]
    assert await pool.zcard("arq:queue") == 0
    assert await pool.exists("runner:flow-meta:arq:queue") == 0


async def test_function_concurrency_caps_running_jobs(pool: RunnerRedis, make_worker: Callable[..., Worker]) -> None:
    rec = Recorder()
    worker = make_worker([func(rec.job, name="job", concurrency=2)], max_jobs=10)
    await worker.async_run()  # publishes the spec
    for i in range(8):
        await pool.enqueue_job("job", i, pause=0.02)
    await worker.async_run()
    assert sorted(rec.order) == list(range(8))
    assert rec.most == 2
    assert await pool.scard("runner:flow-slots:arq:queue:f\x1fjob") == 0


async def test_deferred_job_joins_its_priority(pool: RunnerRedis, make_worker: Callable[..., Worker]) -> None:
    rec = Recorder()
    job = await pool.enqueue_job("job", "late", _priority=3, _defer_by=0.2)
    assert job is not None
    assert await job.status() is JobStatus.deferred
    worker = make_worker([func(rec.job, name="job")], max_jobs=1)
    await worker.async_run()
    assert rec.order == ["late"]
    assert await job.result(timeout=1) == "late"


async def test_groups_take_turns(pool: RunnerRedis, make_worker: Callable[..., Worker]) -> None:
    rec = Recorder()
    for i in range(6):
        await pool.enqueue_job("job", f"a{i}", _group="a")
    for i in range(2):
        await pool.enqueue_job("job", f"b{i}", _group="b")
    worker = make_worker([func(rec.job, name="job", group_concurrency=1)], max_jobs=1)
    await worker.async_run()
    assert rec.order[:4] == ["a0", "b0", "a1", "b1"]
    assert len(rec.order) == 8


async def test_rate_limited_job_waits_without_a_try(pool: RunnerRedis, make_worker: Callable[..., Worker]) -> None:
    rec = Recorder()
    worker = make_worker([func(rec.job, name="job", rate_limit="2/m")], max_jobs=5, burst=False)
    task = asyncio.create_task(worker.async_run())
    while not await pool.exists("runner:flow-spec:arq:queue"):
        await asyncio.sleep(0.01)
    jobs = [await pool.enqueue_job("job", i, _job_id=f"j{i}") for i in range(3)]
    assert await jobs[0].result(timeout=5) == 0  # type: ignore[union-attr]
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rec.order == [0]
    for job in jobs[1:]:
        assert await job.status() is JobStatus.queued  # type: ignore[union-attr]
        assert await pool.get(f"arq:retry:{job.job_id}") is None  # type: ignore[union-attr]


async def test_throttle_refuses_inside_the_window(pool: RunnerRedis) -> None:
    first = await pool.enqueue_job("job", 1, _dedup_key="k", _throttle=60)
    second = await pool.enqueue_job("job", 2, _dedup_key="k", _throttle=60)
    assert first is not None
    assert second is None


async def test_debounce_runs_once_with_the_latest_arguments(
    pool: RunnerRedis, make_worker: Callable[..., Worker]
) -> None:
    rec = Recorder()
    jobs = [await pool.enqueue_job("job", i, _dedup_key="k", _debounce=0.2) for i in range(3)]
    assert len({job.job_id for job in jobs if job}) == 1
    worker = make_worker([func(rec.job, name="job")])
    await worker.async_run()
    assert rec.order == [2]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"_priority": 5000}, "_priority must be a whole number from -1000 to 1000 (got 5000)"),
        ({"_group": ""}, "_group must be a non-empty string"),
        ({"_throttle": 5}, "_throttle and _debounce need a _job_id or a _dedup_key"),
    ],
)
async def test_bad_flow_options_at_enqueue(pool: RunnerRedis, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        await pool.enqueue_job("job", **options)


def test_bad_rate_limit_in_func() -> None:
    async def job(ctx: dict[str, Any]) -> None: ...

    with pytest.raises(InvalidArgument, match=r"job: rate limit '100/x' must be"):
        func(job, rate_limit="100/x")


async def test_queue_stats_show_each_limit_and_its_use(pool: RunnerRedis, make_worker: Callable[..., Worker]) -> None:
    from runner.cli.info import render
    from runner.engine.inspection import queue_stats

    rec = Recorder()
    worker = make_worker(
        [func(rec.job, name="job", concurrency=3, rate_limit="50/s", group_concurrency=1)], global_max_jobs=7
    )
    await worker.async_run()
    await pool.enqueue_job("job", "now", _group="g1")
    await pool.enqueue_job("job", "later", _defer_by=60)
    stats = await queue_stats(pool, "arq:queue")
    assert (stats.queued, stats.deferred) == (1, 1)
    assert [(u.scope, u.kind, u.limit, u.used) for u in stats.limits] == [
        ("queue", "concurrency", "7", 0.0),
        ("job", "concurrency", "3", 0.0),
        ("job", "rate_limit", "50/s", 0.0),
    ]
    text = render([stats], "text")
    assert text.endswith("arq:queue  job    rate_limit 50/s  0 started this period")


@pytest.mark.layouts
async def test_priorities_caps_and_groups_on_every_layout(
    pool: RunnerRedis, make_worker: Callable[..., Worker]
) -> None:
    rec = Recorder()
    worker = make_worker([func(rec.job, name="job", concurrency=2, group_concurrency=1)], max_jobs=5)
    await worker.async_run()  # publishes the limits
    for i in range(3):
        await pool.enqueue_job("job", f"low{i}", pause=0.01, _priority=-1, _group="a")
    await pool.enqueue_job("job", "high", pause=0.01, _priority=9, _group="b")
    await worker.async_run()
    assert rec.order[0] == "high"
    assert sorted(rec.order) == ["high", "low0", "low1", "low2"]
    assert rec.most <= 2
    assert await pool.zcard(pool.key_layout.queue("arq:queue")) == 0


async def test_capped_jobs_finish_and_free_slots_after_the_scripts_are_flushed(
    pool: RunnerRedis, make_worker: Callable[..., Worker]
) -> None:
    """The outcome and its release go by sha in one transaction (outcomes.py): a server that lost its scripts (a
    restart, SCRIPT FLUSH) gets them again, and every job still finishes and gives back its slot."""
    rec = Recorder()
    worker = make_worker([func(rec.job, name="job", concurrency=1)], max_jobs=5)
    await worker.async_run()  # publishes the spec
    for i in range(3):
        await pool.enqueue_job("job", i, pause=0.02)
    await worker.async_run()
    await pool.script_flush()
    for i in range(3, 6):
        await pool.enqueue_job("job", i, pause=0.02)
    await worker.async_run()
    assert sorted(rec.order) == list(range(6))
    assert rec.most == 1
    assert await pool.zcard("arq:queue") == 0
    assert await pool.scard("runner:flow-slots:arq:queue:f\x1fjob") == 0
    assert await pool.zcard("runner:flow-running:arq:queue") == 0
