"""Jobs on every executor through a real worker and server: def jobs in threads, CPU jobs in subprocesses, and a
watchdog that names the job blocking the loop. Timeouts, retries, aborts and Retry(defer) mean the same everywhere."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from runner import JobStatus, RunnerRedis, Worker, func
from runner.engine.executors import RemoteTraceback
from runner.errors import JobExecutionFailed

MakeWorker = Callable[..., Worker]
JOBS = "tests.support.process_jobs"
pytestmark = pytest.mark.timeout(90)


def sync_add(ctx: dict[str, Any], a: int, b: int) -> dict[str, Any]:
    import threading

    return {"sum": a + b, "thread": threading.current_thread().name, "has_redis": "redis" in ctx}


def blocking(ctx: dict[str, Any], seconds: float) -> None:
    time.sleep(seconds)


async def blocks_the_loop(ctx: dict[str, Any], seconds: float) -> str:
    time.sleep(seconds)  # the mistake the watchdog is for: a blocking call inside async def
    return "blocked"


async def quick(ctx: dict[str, Any]) -> str:
    return "quick"


async def run_until(worker: Worker, condition: Callable[[], Any], timeout: float = 20) -> None:
    task = asyncio.create_task(worker.async_run())
    try:
        deadline = time.monotonic() + timeout
        while not await condition() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        worker.request_stop()
        await task


# -- threads --------------------------------------------------------------------------------------------------------


async def test_a_def_job_runs_in_a_thread_with_its_ctx(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sync_add", 2, 3)
    assert job is not None
    worker = make_worker([sync_add])
    await worker.async_run()
    result = await job.result()
    assert result["sum"] == 5 and result["has_redis"] is True
    assert result["thread"].startswith("runner-job-")


async def test_def_jobs_run_side_by_side_up_to_threads(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    jobs = [await pool.enqueue_job("sync_sleep", 0.5) for _ in range(4)]
    worker = make_worker([f"{JOBS}:sync_sleep"], max_jobs=4, threads=4)
    began = time.monotonic()
    await worker.async_run()
    assert time.monotonic() - began < 1.8  # four half-second sleeps at once, not one after another
    names = {(await j.result())["thread"] for j in jobs if j is not None}
    assert len(names) == 4


async def test_a_def_job_that_times_out_fails_and_is_told_to_stop(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sync_cooperative", 10)
    assert job is not None
    worker = make_worker([func(f"{JOBS}:sync_cooperative", timeout=0.3)])
    began = time.monotonic()
    await worker.async_run()
    assert time.monotonic() - began < 3
    info = await job.result_info()
    assert info is not None and not info.success
    assert isinstance(info.result, TimeoutError)
    assert "its thread runs on until the function returns" in str(info.result)


async def test_retry_from_a_def_job(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sync_retries")
    assert job is not None
    worker = make_worker([f"{JOBS}:sync_retries"])
    await worker.async_run()
    assert await job.result() == 2
    assert worker.jobs_retried == 1


async def test_aborting_a_def_job_fails_it_at_once(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sync_cooperative", 30)
    assert job is not None
    worker = make_worker([f"{JOBS}:sync_cooperative"], allow_abort_jobs=True, burst=False)
    task = asyncio.create_task(worker.async_run())
    try:
        while await job.status() != JobStatus.in_progress:
            await asyncio.sleep(0.02)
        assert await job.abort(timeout=5, poll_delay=0.05) is True
    finally:
        worker.request_stop()
        await task
    assert worker.jobs_failed == 1


async def test_a_stop_leaves_a_running_def_job_to_its_lease(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("blocking", 1.5)
    assert job is not None
    worker = make_worker([blocking], burst=False, lease=1)
    task = asyncio.create_task(worker.async_run())
    while await job.status() != JobStatus.in_progress:
        await asyncio.sleep(0.02)
    worker.request_stop()
    await task
    # not requeued while its thread still runs here: the claim lapses within the lease, then the job is due again
    assert await job.status() == JobStatus.in_progress
    await asyncio.sleep(1.2)
    assert await job.status() == JobStatus.queued
    again = make_worker([blocking])
    await again.async_run()
    assert await job.status() == JobStatus.complete


# -- processes ------------------------------------------------------------------------------------------------------


async def test_a_process_job_runs_in_a_job_subprocess(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    import os

    jobs = [await pool.enqueue_job("whoami") for _ in range(3)]
    worker = make_worker([func(f"{JOBS}:whoami", executor="process")], processes=2, process_startup=f"{JOBS}:startup")
    await worker.async_run()
    seen = [await j.result() for j in jobs if j is not None]
    assert all(s["pid"] != os.getpid() for s in seen)
    assert {s["ctx"]["greeting"] for s in seen} == {"hello"}  # the startup hook's ctx
    assert {s["ctx"]["job_id"] for s in seen} == {j.job_id for j in jobs if j is not None}


async def test_a_cpu_job_past_its_timeout_is_killed_and_failed(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("crunch", 60)
    after = await pool.enqueue_job("add", 1, 2)
    assert job is not None and after is not None
    crunch = func(f"{JOBS}:crunch", executor="process", timeout=1)
    worker = make_worker([crunch, func(f"{JOBS}:add", executor="process")])
    await worker.async_run()
    info = await job.result_info()
    assert info is not None and not info.success
    assert isinstance(info.result, TimeoutError)
    assert re.search(r"timeout of 1s; its process \(pid \d+\) was killed", str(info.result))
    held = (info.finish_time - info.start_time).total_seconds()
    assert 1 <= held < 1 + 1
    assert await after.result() == 3  # the replacement subprocess took the next job


async def test_retry_defer_crosses_back_from_a_process_job(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("retries")
    assert job is not None
    worker = make_worker([func(f"{JOBS}:retries", executor="process")], max_burst_jobs=1)
    before_ms = time.time() * 1000
    await worker.async_run()
    # Retry(defer=7) crossed back from the subprocess: the job waits 7 s for its second try
    score = await pool.zscore("arq:queue", job.job_id)
    assert score is not None and score >= before_ms + 7000
    assert worker.jobs_retried == 1


@pytest.mark.parametrize(("function", "signal_name"), [("segfault", "SIGSEGV"), ("sigkill_self", "SIGKILL")])
async def test_a_subprocess_that_dies_fails_only_its_job(
    pool: RunnerRedis, make_worker: MakeWorker, function: str, signal_name: str
) -> None:
    dying = await pool.enqueue_job(function)
    others = [await pool.enqueue_job("add", i, i) for i in range(4)]
    assert dying is not None
    worker = make_worker(
        [func(f"{JOBS}:{function}", executor="process"), func(f"{JOBS}:add", executor="process")], processes=2
    )
    await worker.async_run()
    info = await dying.result_info()
    assert info is not None and not info.success
    assert isinstance(info.result, JobExecutionFailed)
    assert f"died: killed by {signal_name}" in str(info.result)
    assert [await j.result() for j in others if j is not None] == [0, 2, 4, 6]
    assert worker.jobs_failed == 1 and worker.jobs_complete == 4


async def test_a_process_jobs_exception_keeps_the_subprocess_traceback(
    pool: RunnerRedis, make_worker: MakeWorker
) -> None:
    job = await pool.enqueue_job("raises")
    assert job is not None
    worker = make_worker([func(f"{JOBS}:raises", executor="process")])
    await worker.async_run()
    info = await job.result_info()
    assert info is not None and isinstance(info.result, ValueError)
    assert "(in the job process)" in info.result.__dict__["runner_traceback"]
    assert 'raise ValueError("broken on purpose")' in info.result.__dict__["runner_traceback"]
    assert RemoteTraceback.__name__ in info.result.__dict__["runner_traceback"]


async def test_aborting_a_process_job_kills_its_subprocess(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("crunch", 60)
    assert job is not None
    worker = make_worker([func(f"{JOBS}:crunch", executor="process")], processes=1, allow_abort_jobs=True, burst=False)
    task = asyncio.create_task(worker.async_run())
    try:
        while await job.status() != JobStatus.in_progress:
            await asyncio.sleep(0.02)
        assert worker.parts is not None and worker.parts.executors.processes is not None
        (pid,) = worker.parts.executors.processes.pids
        assert await job.abort(timeout=5, poll_delay=0.05) is True
        deadline = time.monotonic() + 5
        while pid in worker.parts.executors.processes.pids and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert pid not in worker.parts.executors.processes.pids
    finally:
        worker.request_stop()
        await task


async def test_process_subprocesses_recycle_by_job_count(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    jobs = [await pool.enqueue_job("whoami") for _ in range(6)]
    worker = make_worker([func(f"{JOBS}:whoami", executor="process")], processes=1, max_jobs=1, max_jobs_per_process=2)
    await worker.async_run()
    pids = [(await j.result())["pid"] for j in jobs if j is not None]
    assert len(set(pids)) == 3 and all(pids.count(p) == 2 for p in set(pids))


async def test_a_failing_process_startup_stops_the_worker_with_its_message(make_worker: MakeWorker) -> None:
    from runner.engine.executors import ProcessStartError

    worker = make_worker([func(f"{JOBS}:add", executor="process")], process_startup=f"{JOBS}:failing_startup")
    with pytest.raises(ProcessStartError, match="database is down"):
        await worker.async_run()


# -- the loop watchdog ----------------------------------------------------------------------------------------------


async def test_the_watchdog_names_the_job_blocking_the_loop(
    pool: RunnerRedis, make_worker: MakeWorker, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = await pool.enqueue_job("blocks_the_loop", 1.2)
    await pool.enqueue_job("quick")
    assert blocker is not None
    worker = make_worker([blocks_the_loop, quick], loop_stall_threshold=0.3)
    with caplog.at_level(logging.WARNING, "runner.watchdog"):
        await worker.async_run()
        await asyncio.sleep(0.2)
    stalls = [r.getMessage() for r in caplog.records if r.name == "runner.watchdog"]
    assert len(stalls) == 1
    assert f"by job {blocker.job_id}:blocks_the_loop" in stalls[0]
    assert "time.sleep(seconds)" in stalls[0] and "in blocks_the_loop" in stalls[0]


async def test_stalls_become_a_counter_and_a_histogram(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    pytest.importorskip("prometheus_client")
    from runner.engine.watchdog import LoopWatchdog
    from runner.metrics import JobMetrics

    metrics = JobMetrics()
    watchdog = LoopWatchdog.for_loop()
    watchdog.subscribe(metrics.loop_stall)
    try:
        await pool.enqueue_job("blocks_the_loop", 0.8)
        await pool.enqueue_job("blocks_the_loop", 0.8)
        worker = make_worker([blocks_the_loop], loop_stall_threshold=0.3, max_jobs=1)
        await worker.async_run()
    finally:
        watchdog.unsubscribe(metrics.loop_stall)
    assert metrics.registry.get_sample_value("runner_loop_stalls_total", {"function": "blocks_the_loop"}) == 2
    assert metrics.registry.get_sample_value("runner_loop_stall_seconds_count") == 2
    assert metrics.registry.get_sample_value("runner_loop_stall_seconds_bucket", {"le": "0.5"}) == 0
    assert metrics.registry.get_sample_value("runner_loop_stall_seconds_bucket", {"le": "2.0"}) == 2
