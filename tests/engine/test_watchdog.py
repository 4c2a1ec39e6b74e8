"""The loop watchdog: one warning per stall naming the blocking job, its stack, and observers told."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence

import pytest

from runner.engine.watchdog import LoopWatchdog, RunningJob, Stall


class Jobs:
    def __init__(self) -> None:
        self.jobs: list[RunningJob] = []

    def running_jobs(self) -> Sequence[RunningJob]:
        return list(self.jobs)


def crunch_numbers(seconds: float) -> None:
    time.sleep(seconds)  # stands for any call that blocks: a sync driver, pure-Python work


async def blocking_job(seconds: float) -> None:
    await asyncio.sleep(0)
    crunch_numbers(seconds)


async def test_one_warning_per_stall_names_the_job_and_the_blocking_frame(caplog: pytest.LogCaptureFixture) -> None:
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold_s=0.2)
    jobs = Jobs()
    stalls: list[Stall] = []
    watchdog.subscribe(stalls.append)
    watchdog.attach(jobs)
    try:
        task = asyncio.create_task(blocking_job(0.6))
        jobs.jobs = [
            RunningJob("3f2a", "crunch", time.monotonic(), task),
            RunningJob("9b1c", "send_email", time.monotonic(), None),
        ]
        with caplog.at_level(logging.WARNING, "runner.watchdog"):
            await task
            await asyncio.sleep(0.3)  # the loop beats again: the stall is reported
        warnings = [r for r in caplog.records if r.name == "runner.watchdog"]
        assert len(warnings) == 1
        text = warnings[0].getMessage()
        assert re.match(r"event loop was blocked for \d\.\d\ds by job 3f2a:crunch \(running \d\.\ds\)", text)
        assert "by job 3f2a:crunch" in text
        assert "1 other job waited: 9b1c:send_email" in text
        assert "in crunch_numbers" in text and "time.sleep(seconds)" in text
        assert len(stalls) == 1 and stalls[0].blocking is not None and stalls[0].blocking.job_id == "3f2a"
        assert 0.4 < stalls[0].duration_s < 1.0
        assert watchdog.stalls == 1
    finally:
        watchdog.detach(jobs)


async def test_a_busy_but_responsive_loop_is_no_stall(caplog: pytest.LogCaptureFixture) -> None:
    # a loaded machine may deschedule this process for a while: the threshold leaves room for that
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold_s=0.6)
    jobs = Jobs()
    watchdog.attach(jobs)
    try:
        with caplog.at_level(logging.WARNING, "runner.watchdog"):
            for _ in range(40):
                crunch_numbers(0.02)  # short slices with awaits between them
                await asyncio.sleep(0)
            await asyncio.sleep(0.1)
        assert watchdog.stalls == 0
        assert not [r for r in caplog.records if r.name == "runner.watchdog"]
    finally:
        watchdog.detach(jobs)


async def test_a_long_stall_is_reported_while_it_lasts(caplog: pytest.LogCaptureFixture) -> None:
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold_s=0.1, long_stall_s=0.4)
    jobs = Jobs()
    watchdog.attach(jobs)
    try:
        with caplog.at_level(logging.INFO, "runner.watchdog"):
            crunch_numbers(0.8)
            await asyncio.sleep(0.1)
        records = [r for r in caplog.records if r.name == "runner.watchdog"]
        assert [r.levelname for r in records] == ["WARNING", "INFO"]
        assert (
            "has been blocked for 0.4" in records[0].getMessage()
            or "has been blocked for 0.5" in records[0].getMessage()
        )
        assert "by code outside any job" in records[0].getMessage()
        assert "free again after 0.8" in records[1].getMessage() or "free again after 0.9" in records[1].getMessage()
    finally:
        watchdog.detach(jobs)


async def test_one_watchdog_per_loop_shared_by_its_workers() -> None:
    first, second = Jobs(), Jobs()
    watchdog = LoopWatchdog.for_loop()
    assert LoopWatchdog.for_loop() is watchdog
    watchdog.attach(first, threshold_s=2.0)
    watchdog.attach(second, threshold_s=0.5)
    try:
        assert watchdog.threshold_s == 0.5
        watchdog.detach(first)
        assert watchdog._thread is not None  # still watching for the second
    finally:
        watchdog.detach(second)
    assert watchdog._thread is None
