"""The thread pool: sync calls off the loop, timeouts and cancels that give up a call, threads started on demand."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time

import pytest

from runner.engine.executors import ThreadPool
from runner.errors import JobExecutionFailed

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def where(tag: str) -> tuple[str, str, str]:
    return tag, threading.current_thread().name, request_id.get()


async def test_a_call_runs_in_a_pool_thread_with_the_callers_contextvars() -> None:
    pool = ThreadPool(2)
    request_id.set("r-42")
    try:
        tag, thread, seen = await pool.run(where, "x")
        assert (tag, seen) == ("x", "r-42")
        assert thread.startswith("runner-job-") and thread != threading.current_thread().name
    finally:
        pool.close()


async def test_threads_start_as_calls_need_them_up_to_size() -> None:
    pool = ThreadPool(3)
    try:
        await pool.run(time.sleep, 0)
        await pool.run(time.sleep, 0)
        assert pool.threads == 1  # the one idle thread took the second call too
        await asyncio.gather(*(pool.run(time.sleep, 0.1) for _ in range(5)))
        assert pool.threads == 3
    finally:
        pool.close()


async def test_a_timeout_gives_up_at_once_and_signals_the_function(caplog: pytest.LogCaptureFixture) -> None:
    pool = ThreadPool(1)
    cancel = threading.Event()
    finished = threading.Event()

    def patient() -> str:
        cancel.wait(5)  # a cooperative function notices that it was given up
        finished.set()
        return "late"

    try:
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            await pool.run(patient, timeout_s=0.2, cancel_event=cancel, label="j1:patient")
        assert time.monotonic() - began < 1
        assert cancel.is_set()
        with caplog.at_level(logging.WARNING, "runner.threads"):
            assert await asyncio.to_thread(finished.wait, 5)
            await asyncio.sleep(0.1)
        assert "j1:patient returned" in caplog.text and "its outcome was dropped" in caplog.text
    finally:
        pool.close()


async def test_a_thread_that_will_not_stop_keeps_its_thread() -> None:
    pool = ThreadPool(1)
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError):
            await pool.run(release.wait, 5, timeout_s=0.1)
        assert pool.busy == 1  # Python cannot stop it: the pool is one thread short until it returns
        release.set()
        assert await pool.run(where, "next", timeout_s=2)
    finally:
        release.set()
        pool.close()


async def test_the_wait_for_a_thread_is_not_timed_and_a_call_cancelled_before_it_starts_never_runs() -> None:
    pool = ThreadPool(1)
    ran: list[str] = []
    try:
        first = asyncio.create_task(pool.run(time.sleep, 0.4))
        await asyncio.sleep(0.05)
        # waits ~0.35s for the only thread, then runs well inside its timeout
        assert (await pool.run(where, "second", timeout_s=0.2))[0] == "second"
        await first
        blocker = asyncio.create_task(pool.run(time.sleep, 0.3))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(pool.run(ran.append, "never"))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await blocker
        await pool.run(time.sleep, 0)
        assert ran == []
    finally:
        pool.close()


async def test_exceptions_and_system_exit_come_back_as_the_calls_failure() -> None:
    pool = ThreadPool(1)

    def fails() -> None:
        raise ValueError("broken on purpose")

    def exits() -> None:
        raise SystemExit(3)

    try:
        with pytest.raises(ValueError, match="broken on purpose"):
            await pool.run(fails)
        with pytest.raises(JobExecutionFailed, match=r"SystemExit\(3\), which would have ended its thread"):
            await pool.run(exits)
        assert await pool.run(where, "still fine")
    finally:
        pool.close()
