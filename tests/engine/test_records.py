"""The running-jobs registry (runner/engine/records.py): one record per job, found and removed by identity."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runner.engine.protocol import Claim, ClaimLoss
from runner.engine.records import ClaimLosses, JobRecord, JobState, RunningJobs


def record(job_id: str) -> JobRecord:
    return JobRecord(Claim(job_id, 1, b"payload", 1, 0, "t"))


async def test_a_record_leaves_the_registry_only_as_itself() -> None:
    running = RunningJobs()
    first, second = record("a"), record("a")
    running.add(first)
    running.add(second)  # the same id claimed again (a lease lapsed): the newer record is the one held
    assert not running.remove(first)
    assert running.get("a") is second
    assert running.remove(second)
    assert len(running) == 0


async def test_states_and_cancelling() -> None:
    running = RunningJobs()
    jobs = [record("a"), record("b")]
    for job in jobs:
        job.task = asyncio.create_task(asyncio.sleep(10))
        running.add(job)
    jobs[1].state = JobState.ABORTING
    assert running.in_state(JobState.ABORTING) == [jobs[1]]
    assert running.ids() == ["a", "b"]
    assert running.cancel_all() == 2
    await running.wait(timeout=5)
    assert all(job.task is not None and job.task.cancelled() for job in jobs)
    assert running.cancel_all() == 0  # nothing left running


def test_a_lost_claim_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    losses = ClaimLosses(10_000)
    with caplog.at_level(logging.WARNING, logger="runner.worker"):
        assert losses.report("a", "t", ClaimLoss.TAKEN)
        assert not losses.report("a", "t", ClaimLoss.TAKEN, outcome="complete")
        assert losses.report("a", "t2", ClaimLoss.GONE, outcome="complete")
    assert len(caplog.records) == 2
    assert "another worker holds it now" in caplog.records[0].getMessage()
    assert "its outcome here (complete) was dropped" in caplog.records[1].getMessage()
