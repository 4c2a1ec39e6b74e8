"""The jobs a worker is running: one ``JobRecord`` per job, all of them in one ``RunningJobs`` registry.

A record is made when the poll loop starts a claimed job and leaves the registry when the job's task ends; every
part that needs to know about a running job (the job runner, the lease keeper, a forced stop) reads and moves
the same record, so nothing has to be cleaned up in several places.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from runner.engine.executors.threads import ThreadCall
from runner.engine.protocol import Claim, ClaimLoss

logger = logging.getLogger("runner.worker")


class JobState(Enum):
    """Where a running job is; it only ever moves forward.

    ``RUNNING`` → ``ABORTING`` (a client asked to abort it) or ``TIMED_OUT`` (the watchdog cancelled it past its
    deadline) → ``FINISHING`` (its outcome is queued for writing: its claim is renewed, never taken back).
    ``LOST`` (from any state but ``FINISHING``): the heartbeat found the claim held by another worker, or the job
    gone from the queue; the run is cancelled and writes no outcome.
    """

    RUNNING = "running"
    ABORTING = "aborting"
    TIMED_OUT = "timed out"
    FINISHING = "finishing"
    LOST = "lost"


@dataclass(slots=True)
class DecodedJob:
    """A job's payload once decoded: what to call and how."""

    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    payload_try: int | None
    enqueue_ms: int


@dataclass(slots=True, eq=False)
class JobRecord:
    """One running job.

    Attributes:
        claim: what the claim script handed over.
        task: the task running it.
        job: the decoded payload, once decoded (None before, or when it could not be).
        job_try: the try this run is (the claim's count, or the payload's when that is larger).
        start_ms: when the job function started (unix ms; when the job was claimed until then).
        deadline: the event-loop time its timeout ends, while its function runs with one.
        state: see ``JobState``.
        thread_call: the call of a ``def`` job in the thread pool, which may outlive the job's task.
    """

    claim: Claim
    task: asyncio.Task[None] | None = None
    job: DecodedJob | None = None
    job_try: int = 0
    start_ms: int = 0
    deadline: float | None = None
    state: JobState = field(default=JobState.RUNNING)
    thread_call: ThreadCall | None = None

    @property
    def job_id(self) -> str:
        return self.claim.job_id

    @property
    def enqueue_ms(self) -> int:
        """The job's enqueue time, 0 while its payload is not decoded."""
        return 0 if self.job is None else self.job.enqueue_ms

    def ran_in(self, call: ThreadCall) -> None:
        self.thread_call = call

    def still_running(self) -> bool:
        """True when the job's function runs on in a thread although its task was cancelled."""
        return self.thread_call is not None and not self.thread_call.finished.is_set()

    def cancel(self) -> bool:
        """Cancel the job's task if it still runs; True when it did."""
        if self.task is None or self.task.done():
            return False
        self.task.cancel()
        return True


class RunningJobs:
    """The registry of running jobs, by id."""

    def __init__(self) -> None:
        self._records: dict[str, JobRecord] = {}

    def add(self, record: JobRecord) -> None:
        self._records[record.job_id] = record

    def remove(self, record: JobRecord) -> bool:
        """Forget ``record``; False when the registry holds another record under its id (or none)."""
        if self._records.get(record.job_id) is not record:
            return False
        del self._records[record.job_id]
        return True

    def get(self, job_id: str) -> JobRecord | None:
        return self._records.get(job_id)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[JobRecord]:
        return iter(list(self._records.values()))

    def ids(self) -> list[str]:
        return list(self._records)

    def tasks(self) -> list[asyncio.Task[None]]:
        return [record.task for record in self._records.values() if record.task is not None]

    def in_state(self, *states: JobState) -> list[JobRecord]:
        return [record for record in self._records.values() if record.state in states]

    def cancel_all(self) -> int:
        """Cancel every job still running; how many were."""
        return sum(record.cancel() for record in self)

    async def wait(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until every job's task has ended, or ``timeout`` seconds."""
        tasks = self.tasks()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def wait_all(self) -> None:
        """Wait until the registry is empty (jobs started meanwhile included)."""
        while self._records:
            await asyncio.wait(self.tasks())


class ClaimLosses:
    """Claims this worker lost while their jobs ran here, each said once, in one line that names the job.

    A claim is lost when this worker stalled (frozen, its loop blocked) past the lease and another worker took the
    job over, or the job left the queue meanwhile. The heartbeat finds out first, or else the outcome write; either
    way the line comes once per claim, from the worker that lost it.
    """

    _REMEMBERED = 10_000

    def __init__(self, lease_ms: int) -> None:
        self.lease_s = lease_ms / 1000
        self._said: OrderedDict[str, None] = OrderedDict()

    def report(self, job_id: str, token: str, loss: ClaimLoss, *, outcome: str | None = None) -> bool:
        """Log the loss unless it was logged already; True when this call logged it."""
        key = f"{token}\0{job_id}"
        if key in self._said:
            return False
        self._said[key] = None
        if len(self._said) > self._REMEMBERED:
            self._said.popitem(last=False)
        if loss is ClaimLoss.TAKEN:
            why = f"another worker holds it now (this worker stalled longer than the lease of {self.lease_s:g}s)"
        else:
            why = "the job is no longer queued (finished or removed elsewhere while this worker stalled)"
        if outcome is None:
            what = "this run is cancelled and writes no outcome"
        else:
            what = f"its outcome here ({outcome}) was dropped"
        if loss is ClaimLoss.TAKEN:
            what += "; the other worker's run decides the job"
        logger.warning("job %s lost its claim while it ran here: %s; %s", job_id, why, what)
        return True
