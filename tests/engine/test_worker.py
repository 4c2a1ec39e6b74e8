"""The worker on a real server: outcomes, retries, timeouts, results, aborts, burst, hooks, health, bad input."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
from collections.abc import Callable
from typing import Any

import pytest

from runner import (
    FailedJobs,
    JobExecutionFailed,
    JobStatus,
    ResultNotFound,
    Retry,
    RunnerRedis,
    Worker,
    func,
    get_serializer,
)
from runner.engine.cluster import RunnerRedisCluster
from runner.engine.utils import timestamp_ms

MakeWorker = Callable[..., Worker]


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def fails(ctx: dict[str, Any]) -> None:
    raise ValueError("broken on purpose")


async def sleeps(ctx: dict[str, Any], seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


async def ctx_echo(ctx: dict[str, Any]) -> dict[str, Any]:
    return {k: ctx[k] for k in ("job_id", "job_try", "score")} | {
        "has_redis": isinstance(ctx["redis"], RunnerRedis | RunnerRedisCluster)
    }


async def retries(ctx: dict[str, Any]) -> int:
    if ctx["job_try"] < 3:
        raise Retry(defer=0.01)
    return ctx["job_try"]


async def always_retries(ctx: dict[str, Any]) -> None:
    raise Retry(defer=0)


async def unpicklable_result(ctx: dict[str, Any]) -> Any:
    return lambda: 1


async def test_job_runs_and_result(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("add", 2, 3)
    assert job is not None
    worker = make_worker([add])
    await worker.async_run()
    assert await job.result() == 5
    assert await job.status() == JobStatus.complete
    info = await job.result_info()
    assert info is not None
    assert (info.success, info.result, info.job_try) == (True, 5, 1)
    assert (info.queue_name, info.job_id) == ("arq:queue", job.job_id)
    assert info.start_time <= info.finish_time
    assert worker.jobs_complete == 1
    await worker.close()  # as in arq, the health records go in close(), not at the end of the run
    # everything but the result is cleaned up (the per-minute counts of `runner info` stay until they expire; the
    # enqueue call's answer stays seconds, for a resend of that call)
    found = await pool.keys("*")
    markers = [k for k in found if k.startswith(b"runner:enqueued:")]
    assert len(markers) == 1 and 0 < await pool.pttl(markers[0]) <= 20_000
    remaining = sorted(k.decode() for k in found if not k.startswith((b"runner:stats:", b"runner:enqueued:")))
    assert remaining == [f"arq:result:{job.job_id}"]  # the closed worker's health records are gone too


@pytest.mark.layouts
async def test_ctx_contents(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("ctx_echo")
    assert job is not None
    await make_worker([ctx_echo]).async_run()
    result = await job.result()
    assert result["job_id"] == job.job_id and result["job_try"] == 1 and result["has_redis"]
    assert abs(result["score"] - timestamp_ms()) < 60_000


@pytest.mark.layouts
async def test_failure_stores_exception(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("fails")
    assert job is not None
    worker = make_worker([fails])
    await worker.async_run()
    with pytest.raises(ValueError, match="broken on purpose"):
        await job.result()
    info = await job.result_info()
    assert info is not None and info.success is False
    assert worker.jobs_failed == 1


@pytest.mark.layouts
async def test_result_wakes_quickly_while_worker_runs(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    worker = make_worker([sleeps], burst=False, poll_delay=5)
    task = asyncio.create_task(worker.async_run())
    try:
        job = await pool.enqueue_job("sleeps", 0.05)
        assert job is not None
        # poll_delay is long: only the worker's wake-up and the done notification can make this finish in time
        assert await job.result(timeout=3, poll_delay=5) == "slept"
    finally:
        worker.request_stop()
        await task


@pytest.mark.layouts
async def test_retry_defer_and_job_try(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("retries")
    assert job is not None
    worker = make_worker([retries])
    await worker.async_run()
    assert await job.result() == 3
    assert worker.jobs_retried == 2 and worker.jobs_complete == 1


@pytest.mark.layouts
async def test_max_tries_exceeded(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("always_retries")
    assert job is not None
    worker = make_worker([func(always_retries, max_tries=3)])
    await worker.async_run()
    with pytest.raises(JobExecutionFailed, match="max 3 retries exceeded"):
        await job.result()
    assert worker.jobs_retried == 3
    info = await job.result_info()
    assert info is not None and info.job_try == 4


async def test_job_try_from_payload_wins(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("ctx_echo", _job_try=4)
    assert job is not None
    await make_worker([ctx_echo]).async_run()
    assert (await job.result())["job_try"] == 4


async def test_retry_jobs_false_makes_retry_a_failure(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("always_retries")
    assert job is not None
    await make_worker([always_retries], retry_jobs=False).async_run()
    with pytest.raises(Retry):
        await job.result()


@pytest.mark.layouts
async def test_timeout(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sleeps", 5)
    assert job is not None
    worker = make_worker([func(sleeps, timeout=0.1)])
    await worker.async_run()
    with pytest.raises(TimeoutError):
        await job.result()


async def test_job_timeout_none_with_two_functions(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    # arq: a TypeError with two functions and job_timeout=None
    job = await pool.enqueue_job("sleeps", 0.01)
    assert job is not None
    await make_worker([sleeps, add], job_timeout=None).async_run()
    assert await job.result() == "slept"


async def test_keep_result_zero_stores_nothing(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("add", 1, 1)
    assert job is not None
    await make_worker([add], keep_result=0).async_run()
    assert await pool.exists("arq:result:" + job.job_id) == 0
    with pytest.raises(ResultNotFound):
        await job.result()


async def test_keep_result_ttl_and_function_override(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    a = await pool.enqueue_job("add", 1, 1)
    b = await pool.enqueue_job("ctx_echo")
    assert a is not None and b is not None
    await make_worker([add, func(ctx_echo, keep_result=20)], keep_result=100).async_run()
    assert 99_000 < await pool.pttl("arq:result:" + a.job_id) <= 100_000
    assert 19_000 < await pool.pttl("arq:result:" + b.job_id) <= 20_000


async def test_keep_result_forever_with_failing_job(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    # arq #531: keep_result_forever with a failing job crashed the worker (SET … PX 0)
    ok = await pool.enqueue_job("add", 1, 1)
    bad = await pool.enqueue_job("fails")
    missing = await pool.enqueue_job("no_such_function")
    assert ok is not None and bad is not None and missing is not None
    worker = make_worker([add, fails], keep_result_forever=True)
    await worker.async_run()
    for job in (ok, bad, missing):
        assert await pool.pttl("arq:result:" + job.job_id) == -1
    assert worker.jobs_complete == 1 and worker.jobs_failed == 2


async def test_function_keep_result_applies_to_early_failures(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    # arq #417: function-level keep_result was ignored when a job failed before it ran (max tries)
    job = await pool.enqueue_job("always_retries", _job_try=9)
    assert job is not None
    await make_worker([func(always_retries, max_tries=2, keep_result=30)], keep_result=3600).async_run()
    assert 29_000 < await pool.pttl("arq:result:" + job.job_id) <= 30_000


async def test_unknown_function_fails_job_worker_continues(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    bad = await pool.enqueue_job("not_registered", 1)
    good = await pool.enqueue_job("add", 1, 2)
    assert bad is not None and good is not None
    worker = make_worker([add])
    await worker.async_run()
    with pytest.raises(JobExecutionFailed, match="function 'not_registered' not found"):
        await bad.result()
    assert await good.result() == 3


async def test_corrupt_payload_fails_job_worker_continues(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    good = await pool.enqueue_job("add", 1, 2)
    assert good is not None
    await pool.psetex("arq:job:" + "corrupt", 60_000, b"\x80\x04not a pickle")
    await pool.zadd("arq:queue", {"corrupt": timestamp_ms()})
    worker = make_worker([add])
    await worker.async_run()
    assert await good.result() == 3
    raw = await pool.get("arq:result:" + "corrupt")
    stored = pickle.loads(raw)
    assert stored["s"] is False and str(stored["r"]) == "unable to deserialize job"
    assert await pool.zcard("arq:queue") == 0


async def test_expired_job(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    await pool.zadd("arq:queue", {"ghost": timestamp_ms()})
    await make_worker([add]).async_run()
    stored = pickle.loads(await pool.get("arq:result:" + "ghost"))
    assert stored["s"] is False and str(stored["r"]) == "job expired"


async def test_unserializable_result(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("unpicklable_result")
    assert job is not None
    worker = make_worker([unpicklable_result])
    await worker.async_run()
    info = await job.result_info()
    assert info is not None and info.success is False
    assert "unable to serialize result" in str(info.result)


@pytest.mark.parametrize("name", ["json", "msgpack"])
async def test_other_serializers(redis_url: str, make_worker: MakeWorker, name: str) -> None:
    from runner import RedisSettings, create_pool

    dumps, loads = get_serializer(name)
    p = await create_pool(RedisSettings.from_dsn(redis_url), job_serializer=dumps, job_deserializer=loads)
    try:
        ok = await p.enqueue_job("add", 20, 22)
        bad = await p.enqueue_job("fails")
        assert ok is not None and bad is not None
        await make_worker([add, fails], job_serializer=dumps, job_deserializer=loads).async_run()
        assert await ok.result() == 42
        with pytest.raises(ValueError, match="broken on purpose"):
            await bad.result()
        raw = await p.get("arq:job:" + ok.job_id) or await p.get("arq:result:" + ok.job_id)
        assert not raw.startswith(b"\x80")  # not pickle
    finally:
        await p.aclose()


async def test_burst_with_max_burst_jobs(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    for i in range(5):
        await pool.enqueue_job("add", i, i)
    worker = make_worker([add], max_burst_jobs=3)
    await worker.async_run()
    assert worker.jobs_complete == 3
    assert await pool.zcard("arq:queue") == 2


async def test_run_check(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    await pool.enqueue_job("add", 1, 1)
    assert await make_worker([add, fails], burst=False).run_check() == 1
    await pool.enqueue_job("fails")
    with pytest.raises(FailedJobs) as info:
        await make_worker([add, fails]).run_check()
    assert info.value.count == 1 and str(info.value) == "1 job failed ValueError('broken on purpose')"


@pytest.mark.layouts
async def test_deferred_job_waits(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("add", 1, 1, _defer_by=0.3)
    assert job is not None
    assert await job.status() == JobStatus.deferred
    start = timestamp_ms()
    await make_worker([add]).async_run()
    info = await job.result_info()
    assert info is not None and info.result == 2
    assert int(info.start_time.timestamp() * 1000) >= start + 250


async def test_hooks_order(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    events: list[str] = []

    def hook(name: str) -> Any:
        async def record(ctx: dict[str, Any]) -> None:
            events.append(f"{name}:{ctx.get('job_id', '-')}")
            if name == "after_job_end":
                # the outcome is stored before after_job_end runs
                events.append(f"stored:{await ctx['redis'].exists('arq:result:' + ctx['job_id'])}")

        return record

    async def job_fn(ctx: dict[str, Any]) -> None:
        events.append(f"job:{ctx['job_id']}")

    await pool.enqueue_job("job_fn", _job_id="h1")
    worker = make_worker(
        [func(job_fn, name="job_fn")],
        on_startup=hook("on_startup"),
        on_shutdown=hook("on_shutdown"),
        on_job_start=hook("on_job_start"),
        on_job_end=hook("on_job_end"),
        after_job_end=hook("after_job_end"),
    )
    await worker.async_run()
    assert events == [
        "on_startup:-",
        "on_job_start:h1",
        "job:h1",
        "on_job_end:h1",
        "after_job_end:h1",
        "stored:1",
    ]
    await worker.close()  # on_shutdown runs in close(), as in arq
    assert events[-1] == "on_shutdown:-" and len(events) == 7


@pytest.mark.layouts
async def test_abort_queued_job(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("add", 1, 1)
    assert job is not None
    worker = make_worker([add], allow_abort_jobs=True)
    abort = asyncio.create_task(job.abort(timeout=5, poll_delay=0.05))
    await asyncio.sleep(0.05)
    await worker.async_run()
    assert await abort is True
    with pytest.raises(asyncio.CancelledError):
        await job.result()


@pytest.mark.layouts
async def test_abort_deferred_job(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("add", 1, 1, _defer_by=3600)
    assert job is not None
    worker = make_worker([add], allow_abort_jobs=True, burst=False)
    task = asyncio.create_task(worker.async_run())
    try:
        assert await job.abort(timeout=5, poll_delay=0.05) is True
    finally:
        worker.request_stop()
        await task
    assert worker.jobs_complete == 0 and worker.jobs_failed == 1


@pytest.mark.layouts
async def test_abort_running_job(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sleeps", 30)
    assert job is not None
    worker = make_worker([sleeps], allow_abort_jobs=True, burst=False)
    task = asyncio.create_task(worker.async_run())
    try:
        for _ in range(100):
            if await job.status() == JobStatus.in_progress:
                break
            await asyncio.sleep(0.02)
        assert await job.abort(timeout=5, poll_delay=0.05) is True
    finally:
        worker.request_stop()
        await task
    assert await pool.zcard("arq:abort") == 0


@pytest.mark.layouts
async def test_status_in_progress(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sleeps", 0.5)
    assert job is not None
    worker = make_worker([sleeps], burst=False)
    task = asyncio.create_task(worker.async_run())
    try:
        seen = set()
        for _ in range(200):
            seen.add(await job.status())
            if JobStatus.complete in seen:
                break
            await asyncio.sleep(0.02)
        assert JobStatus.in_progress in seen and JobStatus.complete in seen
    finally:
        worker.request_stop()
        await task


@pytest.mark.layouts
async def test_graceful_stop_requeues_running_job(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sleeps", 30)
    assert job is not None
    keys = pool.key_layout
    score = await pool.zscore(keys.queue("arq:queue"), job.job_id)
    worker = make_worker([sleeps], burst=False)
    task = asyncio.create_task(worker.async_run())
    while await job.status() != JobStatus.in_progress:
        await asyncio.sleep(0.02)
    worker.request_stop()
    await task
    # back in the queue with the score it had, no claim, and its try given back: the stop ended the run, not the
    # job, so the next worker runs it as the same try (issue 14: a stop's requeue used up tries, max_tries = 1 too)
    assert await job.status() == JobStatus.queued
    assert await pool.zscore(keys.queue("arq:queue"), job.job_id) == score
    assert await pool.get(keys.retry("arq:queue", job.job_id)) == b"0"
    assert worker.jobs_retried == 1


async def test_job_completion_wait_lets_job_finish(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sleeps", 0.3)
    assert job is not None
    worker = make_worker([sleeps], burst=False, job_completion_wait=5)
    task = asyncio.create_task(worker.async_run())
    while await job.status() != JobStatus.in_progress:
        await asyncio.sleep(0.02)
    worker.request_stop()
    await task
    assert await job.result() == "slept"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_signal_requeues_running_job(pool: RunnerRedis, make_worker: MakeWorker, signum: int) -> None:
    job = await pool.enqueue_job("sleeps", 30)
    assert job is not None
    worker = make_worker([sleeps], burst=False, handle_signals=True)
    task = asyncio.create_task(worker.async_run())
    while await job.status() != JobStatus.in_progress:
        await asyncio.sleep(0.02)
    os.kill(os.getpid(), signum)
    await asyncio.wait_for(task, 10)
    assert await job.status() == JobStatus.queued
    assert worker.jobs_retried == 1


async def test_second_stop_cancels_despite_completion_wait(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sleeps", 30)
    assert job is not None
    worker = make_worker([sleeps], burst=False, job_completion_wait=60)
    task = asyncio.create_task(worker.async_run())
    while await job.status() != JobStatus.in_progress:
        await asyncio.sleep(0.02)
    worker.request_stop()
    await asyncio.sleep(0.1)
    assert not task.done()
    worker.request_stop()
    await asyncio.wait_for(task, 10)
    assert await job.status() == JobStatus.queued


async def test_health_check_records(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    worker = make_worker([add], health_check_interval=10, burst=False)
    task = asyncio.create_task(worker.async_run())
    own_key = f"runner:workers:arq:queue:{worker.worker_id}"
    try:
        while not await pool.exists(own_key):
            await asyncio.sleep(0.02)
        line = (await pool.get("arq:queue:health-check")).decode()
        assert line.endswith("j_complete=0 j_failed=0 j_retried=0 j_ongoing=0 queued=0")
        assert 9_000 < await pool.pttl("arq:queue:health-check") <= 11_000
        own = await pool.get(own_key)
        assert own is not None and own.decode() == line
    finally:
        worker.request_stop()
        await task
    # a worker that stopped is not live any more: its own record goes at once; as in arq, the shared key (and the
    # note of what runner wrote there) goes in close()
    assert (await pool.exists("arq:queue:health-check"), await pool.exists(own_key)) == (1, 0)
    await worker.close()
    assert await pool.exists("arq:queue:health-check", own_key, "runner:health-writer:arq:queue") == 0


async def test_own_health_record_is_renewed_every_half_lease(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    """arq's key keeps its hour; the worker's own record lives about a lease, so a dead worker shows within one."""
    worker = make_worker([add], health_check_interval=3600, lease=2, burst=False)
    task = asyncio.create_task(worker.async_run())
    own_key = f"runner:workers:arq:queue:{worker.worker_id}"
    try:
        while not await pool.exists(own_key):
            await asyncio.sleep(0.02)
        assert 3_590_000 < await pool.pttl("arq:queue:health-check") <= 3_601_000  # as arq writes it
        assert 2_000 < await pool.pttl(own_key) <= 3_000  # two renewals of half a lease, and a second
        # the line runner wrote to arq's key is noted, so a reader can tell it from an arq worker's
        assert await pool.get("runner:health-writer:arq:queue") == await pool.get("arq:queue:health-check")
        # it is renewed while the worker lives: long after a first record of 3 s would have expired
        deadline = asyncio.get_running_loop().time() + 4
        while asyncio.get_running_loop().time() < deadline:
            assert await pool.exists(own_key)
            await asyncio.sleep(0.2)
    finally:
        worker.request_stop()
        await task


async def test_crashed_worker_job_recovered_after_lease(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    # a claim left by a dead worker: in-progress key with a short life and the score moved past it
    job = await pool.enqueue_job("add", 2, 2)
    assert job is not None
    await pool.psetex("arq:in-progress:" + job.job_id, 300, b"1")
    await pool.zadd("arq:queue", {job.job_id: timestamp_ms() + 300}, xx=True)
    worker = make_worker([add])
    await worker.async_run()
    assert await job.result() == 4


@pytest.mark.layouts
async def test_heartbeat_keeps_long_job_claimed(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("sleeps", 2.5)
    assert job is not None
    # lease 1 s: without heartbeats the claim would lapse twice during the job
    worker = make_worker([sleeps], lease=1, burst=False)
    task = asyncio.create_task(worker.async_run())
    other = make_worker([sleeps], lease=1, burst=False)
    other_task = asyncio.create_task(other.async_run())
    try:
        assert await job.result(timeout=10) == "slept"
    finally:
        worker.request_stop()
        other.request_stop()
        await asyncio.gather(task, other_task)
    assert worker.jobs_started + other.jobs_started == 1


@pytest.mark.layouts
async def test_many_jobs_concurrently(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    from runner import JobSpec

    jobs = await pool.enqueue_many([JobSpec("sleeps", (0.05,)) for _ in range(200)])
    worker = make_worker([sleeps], max_jobs=50)
    await worker.async_run()
    assert worker.jobs_complete == 200
    assert all([await j.result() == "slept" for j in jobs if j is not None])


def test_worker_requires_functions() -> None:
    with pytest.raises(ValueError, match="at least one function"):
        Worker([])


def test_duplicate_function_names() -> None:
    with pytest.raises(ValueError, match="two functions or cron jobs are named 'add'"):
        Worker([add, func(sleeps, name="add")])


def test_func_picks_an_executor_by_kind_and_refuses_one_that_cannot_run_it() -> None:
    def sync(ctx: dict[str, Any]) -> None:
        return None

    assert func(sync).executor == "thread"
    assert func(add).executor == "async"
    with pytest.raises(TypeError, match='executor "async" runs `async def` functions only'):
        func(sync, executor="async")
    with pytest.raises(TypeError, match="not in a thread"):
        func(add, executor="thread")
    with pytest.raises(TypeError, match="not defined at the top level of a module"):
        func(sync, executor="process")
    with pytest.raises(ValueError, match='unknown executor "fiber"'):
        func(add, executor="fiber")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="is not a function"):
        func(42)  # type: ignore[arg-type]
    crunch = func("tests.support.process_jobs:crunch", executor="process")
    assert (crunch.name, crunch.path) == ("crunch", "tests.support.process_jobs:crunch")


def test_func_import_string() -> None:
    f = func("tests.engine.test_worker:add", max_tries=2)
    assert (f.name, f.coroutine, f.max_tries) == ("add", add, 2)


async def busy_redis(ctx: dict[str, Any]) -> None:
    while True:
        await ctx["redis"].exists("anything")


async def test_timeout_holds_for_a_job_busy_with_redis(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    # on Python 3.11 a cancel can be lost inside a redis-py call with a socket timeout; the watchdog re-cancels
    jobs = [await pool.enqueue_job("busy_redis") for _ in range(10)]
    worker = make_worker([func(busy_redis, timeout=0.3)])
    await asyncio.wait_for(worker.async_run(), 30)
    assert worker.jobs_failed == 10
    for job in jobs:
        assert job is not None
        with pytest.raises(TimeoutError):
            await job.result()


async def test_abort_holds_for_a_job_busy_with_redis(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    jobs = [await pool.enqueue_job("busy_redis") for _ in range(5)]
    worker = make_worker([busy_redis], allow_abort_jobs=True, burst=False)
    task = asyncio.create_task(worker.async_run())
    try:
        for job in jobs:
            assert job is not None
            while await job.status() != JobStatus.in_progress:
                await asyncio.sleep(0.02)
        results = await asyncio.gather(*(job.abort(timeout=10, poll_delay=0.05) for job in jobs if job is not None))
        assert results == [True] * 5
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
