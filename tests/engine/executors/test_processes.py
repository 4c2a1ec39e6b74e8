"""The process pool with real subprocesses: calls, timeouts that kill, deaths, recycling, startup hooks."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from runner import Retry
from runner.engine.executors import ProcessPool, ProcessStartError, RemoteTraceback
from runner.errors import JobExecutionFailed

JOBS = "tests.support.process_jobs"
pytestmark = pytest.mark.timeout(60)


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers signal 0: look at its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


async def gone(pid: int, timeout: float = 5) -> bool:
    """True once ``pid`` has ended (a killed process may take a moment on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return not alive(pid)


async def wait_for_pids(pool: ProcessPool, count: int, timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(pool.pids) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return pool.pids


async def started(size: int = 1, **kwargs: object) -> ProcessPool:
    pool = ProcessPool(size, **kwargs)  # type: ignore[arg-type]
    await pool.start()
    return pool


async def test_sync_and_async_functions_run_in_a_subprocess_with_startup_ctx() -> None:
    pool = await started(2, startup=f"{JOBS}:startup")
    try:
        assert await pool.run(f"{JOBS}:add", {}, (2, 3), {}) == 5
        assert await pool.run(f"{JOBS}:async_add", {}, (4,), {"b": 5}) == 9
        seen = await pool.run(f"{JOBS}:whoami", {"job_id": "j1"}, (), {})
        assert seen["pid"] in pool.pids and seen["pid"] != os.getpid()
        # the startup hook's ctx is the base of every call's ctx, and the call's own fields are on top
        assert seen["ctx"] == {"started_in": seen["pid"], "greeting": "hello", "job_id": "j1"}
        both = await asyncio.gather(*(pool.run(f"{JOBS}:whoami", {}, (), {}) for _ in range(2)))
        assert {b["pid"] for b in both} <= set(pool.pids)
    finally:
        await pool.close()


async def test_exceptions_cross_with_the_subprocess_traceback() -> None:
    pool = await started()
    try:
        with pytest.raises(ValueError, match="broken on purpose") as info:
            await pool.run(f"{JOBS}:raises", {}, (), {})
        assert isinstance(info.value.__cause__, RemoteTraceback)
        assert "process_jobs.py" in info.value.__cause__.text
        with pytest.raises(Retry) as retry:
            await pool.run(f"{JOBS}:retries", {}, (), {})
        assert retry.value.defer_score == 7000
        # an exception that pickles but cannot be rebuilt arrives as a JobExecutionFailed naming it
        with pytest.raises(JobExecutionFailed, match="TwoArgError: 7: nope"):
            await pool.run(f"{JOBS}:raises_unrebuildable", {}, (), {})
        with pytest.raises(JobExecutionFailed, match="result cannot cross the process boundary"):
            await pool.run(f"{JOBS}:returns_lambda", {}, (), {})
        with pytest.raises(JobExecutionFailed, match="arguments of add cannot cross"):
            await pool.run(f"{JOBS}:add", {}, (lambda: 1, 2), {}, label="add")
        with pytest.raises(JobExecutionFailed, match=r"SystemExit\(4\), which would have ended its process"):
            await pool.run(f"{JOBS}:exits", {}, (), {})
        # a job's print goes to stderr, not into the protocol
        assert await pool.run(f"{JOBS}:prints", {}, (), {}) == "printed"
        # none of that cost the process
        assert pool.replaced == 0 and len(pool.pids) == 1
    finally:
        await pool.close()


async def test_a_timeout_kills_the_subprocess_and_a_new_one_takes_its_place() -> None:
    pool = await started()
    try:
        (old,) = pool.pids
        began = time.monotonic()
        with pytest.raises(TimeoutError, match=rf"timeout of 0.5s; its process \(pid {old}\) was killed"):
            await pool.run(f"{JOBS}:crunch", {}, (30,), {}, timeout_s=0.5)
        assert time.monotonic() - began < 0.5 + 1
        assert await gone(old)
        (new,) = await wait_for_pids(pool, 1)
        assert new != old
        assert await pool.run(f"{JOBS}:add", {}, (1, 1), {}) == 2
    finally:
        await pool.close()


async def test_a_cancelled_call_kills_its_subprocess() -> None:
    pool = await started()
    try:
        (old,) = pool.pids
        task = asyncio.create_task(pool.run(f"{JOBS}:crunch", {}, (30,), {}))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await gone(old)
        assert await pool.run(f"{JOBS}:add", {}, (1, 2), {}) == 3
    finally:
        await pool.close()


@pytest.mark.parametrize(("function", "signal_name"), [("segfault", "SIGSEGV"), ("sigkill_self", "SIGKILL")])
async def test_a_subprocess_that_dies_fails_only_its_call(function: str, signal_name: str) -> None:
    pool = await started(2)
    try:
        other = asyncio.create_task(pool.run(f"{JOBS}:crunch", {}, (0.5,), {}))
        await asyncio.sleep(0.05)
        with pytest.raises(JobExecutionFailed, match=rf"died: killed by {signal_name}"):
            await pool.run(f"{JOBS}:{function}", {}, (), {})
        assert await other > 0  # the call in the other subprocess went on
        assert len(await wait_for_pids(pool, 2)) == 2
        assert await pool.run(f"{JOBS}:add", {}, (2, 2), {}) == 4
    finally:
        await pool.close()


async def test_a_subprocess_killed_from_outside_mid_call_fails_that_call() -> None:
    pool = await started()
    try:
        (pid,) = pool.pids
        task = asyncio.create_task(pool.run(f"{JOBS}:crunch", {}, (30,), {}))
        await asyncio.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(JobExecutionFailed, match="killed by SIGKILL"):
            await task
        # and one killed while idle is noticed before the next call is given to it
        (idle,) = await wait_for_pids(pool, 1)
        os.kill(idle, signal.SIGKILL)
        await asyncio.sleep(0.3)
        assert await pool.run(f"{JOBS}:add", {}, (3, 3), {}) == 6
    finally:
        await pool.close()


async def test_recycling_by_job_count_starts_the_replacement_and_runs_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCESS_JOBS_SHUTDOWN_DIR", str(tmp_path))
    pool = await started(max_jobs_per_process=2, shutdown=f"{JOBS}:shutdown")
    try:
        pids = []
        for _ in range(5):
            pids.append((await pool.run(f"{JOBS}:whoami", {}, (), {}))["pid"])
        assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
        assert pool.recycled == 2
        deadline = time.monotonic() + 10
        while len(names(tmp_path)) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert names(tmp_path) == {str(pids[0]), str(pids[2])}
    finally:
        await pool.close()
    # a clean close runs the last one's shutdown hook too
    assert str(pids[4]) in names(tmp_path)


async def test_recycling_by_memory() -> None:
    pool = await started(max_memory_per_process=250 * 1024 * 1024)
    try:
        first = (await pool.run(f"{JOBS}:whoami", {}, (), {}))["pid"]
        rss = await pool.run(f"{JOBS}:grow", {}, (300,), {})
        assert rss > 250 * 1024 * 1024
        assert pool.recycled == 1
        second = (await pool.run(f"{JOBS}:whoami", {}, (), {}))["pid"]
        assert second != first
        assert await gone(first)
    finally:
        await pool.close()


async def test_a_failing_startup_hook_stops_start_with_its_message() -> None:
    pool = ProcessPool(2, startup=f"{JOBS}:failing_startup")
    with pytest.raises(ProcessStartError, match=r'process_startup ".*failing_startup" failed: RuntimeError: database'):
        await pool.start()
    assert pool.pids == []


async def test_an_async_startup_hook_and_close_ends_every_subprocess() -> None:
    pool = await started(3, startup=f"{JOBS}:async_startup")
    pids = pool.pids
    assert len(pids) == 3
    assert (await pool.run(f"{JOBS}:whoami", {}, (), {}))["ctx"]["greeting"] == "hello from async"
    await pool.close()
    assert not any(alive(pid) for pid in pids)
    with pytest.raises(JobExecutionFailed, match="closed"):
        await pool.run(f"{JOBS}:add", {}, (1, 1), {})


async def test_calls_wait_for_a_free_subprocess_and_the_wait_is_not_timed() -> None:
    pool = await started(1)
    try:
        first = asyncio.create_task(pool.run(f"{JOBS}:crunch", {}, (0.6,), {}))
        await asyncio.sleep(0.05)
        # waits ~0.55s for the only subprocess, then runs well inside its 0.4s timeout
        assert await pool.run(f"{JOBS}:add", {}, (1, 2), {}, timeout_s=0.4) == 3
        assert await first > 0
    finally:
        await pool.close()
