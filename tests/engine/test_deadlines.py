"""The shared deadline timer of async jobs (runner/engine/deadlines.py): one timer, a heap of deadlines."""

from __future__ import annotations

import asyncio

from runner.engine import deadlines as deadlines_module
from runner.engine.deadlines import Deadlines
from runner.engine.protocol import Claim
from runner.engine.records import JobRecord, JobState


def running(job_id: str, seconds: float = 10) -> JobRecord:
    record = JobRecord(Claim(job_id, 1, b"payload", 1, 0, "t"))
    record.task = asyncio.create_task(asyncio.sleep(seconds))
    return record


async def test_a_job_past_its_deadline_is_cancelled_as_timed_out_and_the_others_run_on() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    late, later, done = running("late"), running("later"), running("done")
    deadlines.add(later, loop.time() + 5)
    deadlines.add(late, loop.time() + 0.05)  # earlier than the armed timer: it is armed again
    deadlines.add(done, loop.time() + 0.05)
    done.deadline = None  # ended before its deadline: left alone
    await asyncio.sleep(0.2)
    assert late.state is JobState.TIMED_OUT and late.task is not None and late.task.cancelling()
    assert done.state is JobState.RUNNING and done.task is not None and not done.task.cancelling()
    assert later.state is JobState.RUNNING and len(deadlines) == 1
    deadlines.close()
    for record in (late, later, done):
        assert record.task is not None
        record.task.cancel()


async def test_a_job_being_aborted_is_left_to_its_abort() -> None:
    deadlines = Deadlines()
    record = running("a")
    record.state = JobState.ABORTING
    deadlines.add(record, asyncio.get_running_loop().time() + 0.01)
    await asyncio.sleep(0.1)
    assert record.state is JobState.ABORTING and record.task is not None and not record.task.cancelling()
    record.task.cancel()


async def test_entries_of_ended_jobs_do_not_pile_up() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    for i in range(5_000):
        record = JobRecord(Claim(str(i), 1, b"", 1, 0, "t"))
        deadlines.add(record, loop.time() + 300)
        record.deadline = None  # the job ended at once, as a no-op job does
    assert len(deadlines) <= 2 * deadlines_module._COMPACT_MIN
    deadlines.close()
