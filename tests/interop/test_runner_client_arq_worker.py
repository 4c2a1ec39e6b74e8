"""Direction 2: a runner client enqueues, the real arq worker (PyPI arq 0.28, ``arq --burst``) runs, runner reads back.

Everything runner sees goes through its own API (``enqueue_job``, ``Job.status/info/result/result_info/abort``).
Where a result holds an arq-only class (arq.jobs.JobExecutionFailed), this venv cannot unpickle it, so those
cases are checked through raw redis with a tolerant unpickler instead.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from runner import Job, JobDef, JobResult, JobStatus, ResultNotFound, RunnerRedis
from runner.engine.utils import timestamp_ms
from runner.errors import DeserializationError
from tests.interop.arq_env import ArqClient
from tests.interop.conftest import ArqWorkerRunner, loads_tolerant, wait_arq_worker, wait_until

pytestmark = pytest.mark.interop

StartArqWorker = Callable[..., subprocess.Popen[bytes]]


async def test_plain_job_status_info_result(
    pool: RunnerRedis, run_arq_worker: ArqWorkerRunner, raw: aioredis.Redis
) -> None:
    before = timestamp_ms()
    job = await pool.enqueue_job("add", 1, 2, c=3)
    assert job is not None
    assert await job.status() == JobStatus.queued
    info = await job.info()
    assert isinstance(info, JobDef)
    assert not isinstance(info, JobResult)
    assert (info.function, info.args, info.kwargs, info.job_try) == ("add", (1, 2), {"c": 3}, None)
    assert info.score is not None
    assert before <= info.score <= timestamp_ms()

    await run_arq_worker()

    assert await job.result(timeout=10, poll_delay=0.02) == 6
    assert await job.status() == JobStatus.complete
    done = await job.result_info()
    assert done is not None
    assert (done.success, done.result, done.job_try) == (True, 6, 1)
    assert (done.queue_name, done.job_id, done.function, done.args, done.kwargs) == (
        "arq:queue",
        job.job_id,
        "add",
        (1, 2),
        {"c": 3},
    )
    assert done.enqueue_time <= done.start_time <= done.finish_time
    assert not await raw.exists(f"arq:job:{job.job_id}", f"arq:retry:{job.job_id}", f"arq:in-progress:{job.job_id}")

    unknown = Job("no-such-job", pool)
    assert await unknown.status() == JobStatus.not_found
    with pytest.raises(ResultNotFound):
        await unknown.result(timeout=5, poll_delay=0.02)


async def test_in_progress_status(
    pool: RunnerRedis, arq_worker: StartArqWorker, raw: aioredis.Redis, tmp_path: Path
) -> None:
    job = await pool.enqueue_job("hold", "gate:1")
    assert job is not None
    worker = arq_worker()
    await wait_until(status_is(job, JobStatus.in_progress), "the arq worker to start the job", within_s=20)
    running = await job.info()
    assert running is not None
    assert (running.function, running.args) == ("hold", ("gate:1",))
    await raw.set("gate:1", 1)
    await wait_arq_worker(worker, tmp_path)
    assert await job.result(timeout=10, poll_delay=0.02) == "released"
    assert await job.status() == JobStatus.complete


def status_is(job: Job, expected: JobStatus) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await job.status() == expected

    return check


async def test_deferred_by_and_until(pool: RunnerRedis, run_arq_worker: ArqWorkerRunner) -> None:
    before = timestamp_ms()
    by_job = await pool.enqueue_job("whoami", _defer_by=0.4)
    until = datetime.now(tz=UTC) + timedelta(milliseconds=400)
    until_job = await pool.enqueue_job("whoami", _defer_until=until)
    assert by_job is not None
    assert until_job is not None
    assert await by_job.status() == JobStatus.deferred
    assert await until_job.status() == JobStatus.deferred
    by_info = await by_job.info()
    until_info = await until_job.info()
    assert by_info is not None
    assert until_info is not None
    assert by_info.score is not None
    assert by_info.score >= before + 400
    assert until_info.score == round(until.timestamp() * 1000)

    await run_arq_worker()

    for job, score in ((by_job, by_info.score), (until_job, until_info.score)):
        assert await job.result(timeout=10, poll_delay=0.02) == {
            "job_id": job.job_id,
            "job_try": 1,
            "score": score,
            "worker": "arq",
        }
        done = await job.result_info()
        assert done is not None
        assert done.start_time.timestamp() * 1000 >= score, "a deferred job must not start before its time"


async def test_job_id_dedupe(pool: RunnerRedis, run_arq_worker: ArqWorkerRunner) -> None:
    first = await pool.enqueue_job("add", 1, 1, _job_id="dup")
    assert first is not None
    assert first.job_id == "dup"
    assert await pool.enqueue_job("add", 5, 5, _job_id="dup") is None

    await run_arq_worker()

    assert await first.result(timeout=10, poll_delay=0.02) == 2
    # the result arq's worker kept still blocks the id
    assert await pool.enqueue_job("add", 5, 5, _job_id="dup") is None


async def test_retry_with_defer(pool: RunnerRedis, run_arq_worker: ArqWorkerRunner, raw: aioredis.Redis) -> None:
    job = await pool.enqueue_job("retry_twice")
    assert job is not None
    await run_arq_worker()
    assert await job.result(timeout=10, poll_delay=0.02) == 3
    done = await job.result_info()
    assert done is not None
    assert (done.success, done.job_try) == (True, 3)
    assert not await raw.exists(f"arq:retry:{job.job_id}", f"arq:job:{job.job_id}")


async def test_failures_come_back(pool: RunnerRedis, run_arq_worker: ArqWorkerRunner, raw: aioredis.Redis) -> None:
    failing = await pool.enqueue_job("fail", "boom")
    exhausted = await pool.enqueue_job("always_retry")
    unknown = await pool.enqueue_job("no_such_function", 1)
    assert failing is not None
    assert exhausted is not None
    assert unknown is not None

    await run_arq_worker()

    with pytest.raises(ValueError, match="^boom$"):
        await failing.result(timeout=10, poll_delay=0.02)
    info = await failing.result_info()
    assert info is not None
    assert (info.success, type(info.result), info.result.args, info.job_try) == (False, ValueError, ("boom",), 1)
    # arq's own failures hold arq.worker.JobExecutionFailed, which this venv cannot unpickle (runner says so
    # clearly); check runner sees them complete, and read the stored record through raw redis instead
    for job, message, tries in (
        (exhausted, "max 2 retries exceeded", 3),
        (unknown, "function 'no_such_function' not found", 1),
    ):
        assert await job.status() == JobStatus.complete
        with pytest.raises(DeserializationError):
            await job.result(timeout=10, poll_delay=0.02)
        stored = loads_tolerant(await raw.get(f"arq:result:{job.job_id}"))
        assert stored["s"] is False
        assert stored["t"] == tries
        assert stored["r"].qualname == "arq.worker.JobExecutionFailed"
        assert stored["r"].args == (message,)


async def test_abort_queued_deferred_and_running(
    pool: RunnerRedis, arq_worker: StartArqWorker, raw: aioredis.Redis, tmp_path: Path
) -> None:
    running = await pool.enqueue_job("hold", "gate:never")
    queued = await pool.enqueue_job("add", 1, 2)
    deferred = await pool.enqueue_job("add", 3, 4, _defer_by=60)
    assert running is not None
    assert queued is not None
    assert deferred is not None
    # abort() marks the job, then waits for its result: run it alongside the arq worker
    abort_queued = asyncio.create_task(queued.abort(timeout=20, poll_delay=0.02))
    abort_deferred = asyncio.create_task(deferred.abort(timeout=20, poll_delay=0.02))
    await wait_until(
        lambda: _all_present(raw.zmscore("arq:abort", [queued.job_id, deferred.job_id])), "both aborts to be marked"
    )
    assert await raw.zscore("arq:queue", deferred.job_id) == 1, "an aborted deferred job is brought forward"

    worker = arq_worker()
    assert await abort_queued is True
    assert await abort_deferred is True
    await wait_until(status_is(running, JobStatus.in_progress), "the arq worker to start the job")
    assert await running.abort(timeout=20, poll_delay=0.02) is True
    await wait_arq_worker(worker, tmp_path)

    for job in (running, queued, deferred):
        assert await job.status() == JobStatus.complete
        with pytest.raises(asyncio.CancelledError):
            await job.result(timeout=5, poll_delay=0.02)
        info = await job.result_info()
        assert info is not None
        assert info.success is False
    assert not await raw.exists("arq:abort", "arq:queue")


async def _all_present(scores: Awaitable[list[float | None]]) -> bool:
    return all(score is not None for score in await scores)


async def test_keep_result_zero(pool: RunnerRedis, run_arq_worker: ArqWorkerRunner, raw: aioredis.Redis) -> None:
    job = await pool.enqueue_job("no_result")
    assert job is not None
    await run_arq_worker()
    assert not await raw.exists(f"arq:result:{job.job_id}")
    assert await job.status() == JobStatus.not_found
    with pytest.raises(ResultNotFound):
        await job.result(timeout=5, poll_delay=0.02)


async def test_custom_queue_job_try_and_listings(
    pool: RunnerRedis, arq_client: ArqClient, run_arq_worker: ArqWorkerRunner, raw: aioredis.Redis
) -> None:
    job = await pool.enqueue_job("whoami", _queue_name="arq:other", _job_try=3)
    assert job is not None
    # arq's listing reads runner's payload
    [listed] = await arq_client.queued_jobs(queue_name="arq:other")
    assert (listed["job_id"], listed["function"], listed["job_try"]) == (job.job_id, "whoami", 3)

    await run_arq_worker(queue_name="arq:other")

    assert await job.result(timeout=10, poll_delay=0.02) == {
        "job_id": job.job_id,
        "job_try": 3,
        "score": listed["score"],
        "worker": "arq",
    }
    [result] = await pool.all_job_results()
    assert (result.job_id, result.queue_name, result.job_try, result.success) == (job.job_id, "arq:other", 3, True)
    assert not await raw.exists("arq:queue")
