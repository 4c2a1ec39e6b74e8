"""The loop ``Worker.run()`` starts (runner/engine/loops.py): uvloop, asyncio's, or uvloop when installed.

These tests are sync on purpose: ``Worker.run()`` makes its own loop, as ``runner start`` does, so they cannot run
inside pytest-asyncio's. The suite's test extra installs uvloop, so "auto" means uvloop here unless a test hides it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import warnings
from typing import Any

import pytest
import uvloop

from runner import RedisSettings, Worker, create_pool, func
from runner.engine import loops
from runner.errors import InvalidArgument

JOBS = "tests.support.process_jobs"
SEEN: list[str] = []  # the module of each job's running loop, in the order the jobs ran


async def loop_kind(ctx: dict[str, Any]) -> str:
    kind = type(asyncio.get_running_loop()).__module__
    SEEN.append(kind)
    return kind


async def enqueue(settings: RedisSettings, *calls: tuple[str, tuple[Any, ...]]) -> list[str]:
    pool = await create_pool(settings)
    try:
        jobs = [await pool.enqueue_job(name, *args) for name, args in calls]
        return [job.job_id for job in jobs if job is not None]
    finally:
        await pool.aclose()


async def results(settings: RedisSettings, job_ids: list[str]) -> list[Any]:
    from runner import Job

    pool = await create_pool(settings)
    try:
        return [await Job(job_id, pool).result(timeout=5) for job_id in job_ids]
    finally:
        await pool.aclose()


def burst_worker(settings: RedisSettings, functions: list[Any], **options: Any) -> Worker:
    return Worker(functions, redis_settings=settings, burst=True, handle_signals=False, poll_delay=0.05, **options)


@pytest.fixture(autouse=True)
def _seen() -> None:
    SEEN.clear()


@pytest.fixture
def hide_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvloop cannot be imported, as where the extra is not installed (None in sys.modules fails the import)."""
    monkeypatch.setitem(sys.modules, "uvloop", None)


@pytest.mark.parametrize(
    ("event_loop", "module"), [("uvloop", "uvloop"), ("asyncio", "asyncio.unix_events"), ("auto", "uvloop")]
)
def test_run_takes_the_loop_event_loop_names(
    redis_settings: RedisSettings, event_loop: str, module: str, caplog: pytest.LogCaptureFixture
) -> None:
    job_ids = asyncio.run(enqueue(redis_settings, ("loop_kind", ()), ("loop_kind", ())))
    worker = burst_worker(redis_settings, [loop_kind], event_loop=event_loop)
    with caplog.at_level(logging.INFO, logger="runner.worker"):
        worker.run()
    assert worker.jobs_complete == 2 and worker.jobs_failed == 0
    assert SEEN == [module, module]
    assert asyncio.run(results(redis_settings, job_ids)) == [module, module]
    # the startup line tells an operator which loop it is
    name = module.partition(".")[0]
    started = [r.getMessage() for r in caplog.records if re.match(r"worker \w+ on ", r.getMessage())]
    assert len(started) == 1 and f"on arq:queue (event loop: {name}): 1 functions: loop_kind" in started[0]


def test_auto_takes_asyncio_where_uvloop_is_not_installed(redis_settings: RedisSettings, hide_uvloop: None) -> None:
    asyncio.run(enqueue(redis_settings, ("loop_kind", ())))
    worker = burst_worker(redis_settings, [loop_kind])  # "auto", the default
    worker.run()
    assert SEEN == ["asyncio.unix_events"]


def test_uvloop_where_it_is_not_installed_is_refused_at_once(hide_uvloop: None) -> None:
    with pytest.raises(InvalidArgument) as refused:
        Worker([loop_kind], event_loop="uvloop")
    assert str(refused.value) == (
        'event_loop "uvloop" needs uvloop, which is not installed: pip install "runner-jobs[uvloop]", '
        'or use "auto" to take it only where it is installed'
    )


def test_an_unknown_loop_is_refused_at_once() -> None:
    with pytest.raises(InvalidArgument) as refused:
        Worker([loop_kind], event_loop="trio")
    assert str(refused.value) == 'event_loop must be one of "auto", "asyncio", "uvloop" (got \'trio\')'


def test_a_process_job_runs_beside_a_worker_on_uvloop(redis_settings: RedisSettings) -> None:
    # job subprocesses are started and read through the loop's subprocess transport, which uvloop has its own of
    job_ids = asyncio.run(enqueue(redis_settings, ("add", (2, 3)), ("async_add", (4, 5)), ("loop_kind", ())))
    functions = [func(f"{JOBS}:add", executor="process"), func(f"{JOBS}:async_add", executor="process"), loop_kind]
    worker = burst_worker(redis_settings, functions, event_loop="uvloop", processes=1)
    worker.run()
    assert worker.jobs_complete == 3 and worker.jobs_failed == 0
    assert asyncio.run(results(redis_settings, job_ids)) == [5, 9, "uvloop"]


def test_the_process_policy_is_left_alone(redis_settings: RedisSettings) -> None:
    # the loop comes from a factory, not a policy: after a run on uvloop, asyncio.run() still makes asyncio's loop,
    # and "asyncio" is asyncio's loop even where a library installed uvloop's policy
    asyncio.run(enqueue(redis_settings, ("loop_kind", ())))
    burst_worker(redis_settings, [loop_kind], event_loop="uvloop").run()
    assert SEEN == ["uvloop"]
    assert type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy

    before = asyncio.get_event_loop_policy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the policy API is deprecated from Python 3.14
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        asyncio.run(enqueue(redis_settings, ("loop_kind", ())))
        burst_worker(redis_settings, [loop_kind], event_loop="asyncio").run()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(before)
    assert SEEN == ["uvloop", "asyncio.unix_events"]


def test_run_closes_a_coroutine_it_cannot_start(hide_uvloop: None) -> None:
    coroutine = loop_kind({})
    with pytest.raises(InvalidArgument):
        loops.run(coroutine, event_loop="uvloop")
    assert coroutine.cr_frame is None  # closed: no "was never awaited" warning later


def test_loop_names() -> None:
    uv = uvloop.new_event_loop()
    plain = loops.loop_factory("asyncio")()
    try:
        assert (loops.loop_name(uv), loops.loop_name(plain)) == ("uvloop", "asyncio")
    finally:
        uv.close()
        plain.close()
