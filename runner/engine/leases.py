"""The lease keeper: keeps the claims of a worker's running jobs alive, and cancels the jobs that must stop.

Every ``min(poll_delay, 0.5)`` seconds it cancels jobs running well past their timeout and jobs a client aborted
(with ``allow_abort_jobs``). The claims are renewed every third of a lease (``heartbeat.lua``) by the lease thread
(lease_thread.py), with its own connection, so that a job blocking the event loop cannot make them lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from runner.engine.client import RunnerRedis
from runner.engine.lease_thread import Claims, LeaseThread
from runner.engine.lifecycle import REDIS_ERRORS, Outage
from runner.engine.outcomes import OutcomeWriter
from runner.engine.protocol import ClaimLoss
from runner.engine.records import ClaimLosses, JobState, RunningJobs
from runner.engine.utils import timestamp_ms

logger = logging.getLogger("runner.worker")

# how far past its deadline a job may run before the watchdog cancels it (its own timeout should have)
_TIMEOUT_GRACE_S = 0.5


class LeaseKeeper:
    """Renews claims, enforces timeouts and aborts, for the jobs in ``running``.

    Args:
        pool: the worker's Redis client.
        client: a blocking client of the lease thread's own (``connection.blocking_client``).
        queue_name: the worker's queue.
        running: the worker's running jobs.
        writer: its lock orders heartbeats and outcome writes.
        outage: the worker's outage policy.
        lease_ms: how long a claim lives without a heartbeat.
        allow_abort_jobs: cancel running jobs a client aborts.
        tick_s: how often the loop looks.
        losses: where claims found lost are said (once each).
    """

    def __init__(
        self,
        *,
        pool: RunnerRedis,
        client: Any,
        queue_name: str,
        running: RunningJobs,
        writer: OutcomeWriter,
        outage: Outage,
        lease_ms: int,
        allow_abort_jobs: bool,
        tick_s: float,
        losses: ClaimLosses | None = None,
    ) -> None:
        self.pool = pool
        self.queue_name = queue_name
        self.running = running
        self.writer = writer
        self.outage = outage
        self.lease_ms = lease_ms
        self.allow_abort_jobs = allow_abort_jobs
        self.tick_s = tick_s
        self.losses = losses or ClaimLosses(lease_ms)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = asyncio.Event()
        self.thread = LeaseThread(
            client,
            claims=self.claims,
            request=self.request,
            lease_ms=lease_ms,
            claims_lock=writer.lock,
            on_lost=self._lost,
            name=f"runner-lease-{queue_name}",
        )

    async def run(self) -> None:
        """Loop until ``close()``; the lease thread runs as long."""
        self._loop = asyncio.get_running_loop()
        self.thread.start()
        try:
            while not self._closing.is_set():
                self.enforce_timeouts()
                try:
                    if self.allow_abort_jobs and len(self.running):
                        await self.cancel_aborted()
                except REDIS_ERRORS as exc:
                    await self.outage.failed(exc)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.tick_s)
        finally:
            await asyncio.to_thread(self.thread.stop)

    def close(self) -> None:
        """Ask the loop to end; it is never cancelled, so no Redis call is cut off halfway."""
        self._closing.set()

    async def heartbeat(self) -> None:
        """Renew every claim now, as the lease thread does every third of a lease.

        A running job's lost claim is taken back when free; a finishing job's is only renewed: once its outcome is
        written its key is gone for good, and taking it back would hold a finished or requeued job for a whole lease.
        """
        await asyncio.to_thread(self.thread.renew)

    def claims(self) -> Claims:
        """The ids to renew, ``(running, finishing)``; the lease thread calls it, so it only reads the registry.

        A job whose claim was found lost is left out: another worker holds it now, and its run here is ending.
        """
        running: list[str] = []
        finishing: list[str] = []
        for record in self.running:
            if record.state is not JobState.LOST:
                (finishing if record.state is JobState.FINISHING else running).append(record.job_id)
        return running, finishing

    def request(self, retake: list[str], renew_only: list[str]) -> tuple[list[str], list[Any]]:
        """The keys and arguments of one ``heartbeat.lua`` call: each id with its claim's holder token."""
        layout, queue = self.pool.key_layout, self.queue_name
        prefix = layout.in_progress_prefix(queue)
        ids = retake + renew_only
        args: list[Any] = [timestamp_ms(), self.lease_ms, len(retake)]
        for job_id in ids:
            record = self.running.get(job_id)
            args += [job_id, "" if record is None else record.claim.token]
        return [layout.queue(queue), *[prefix + job_id for job_id in ids]], args

    def _lost(self, losses: list[tuple[str, ClaimLoss]]) -> None:
        """From the lease thread: running jobs whose claim another worker holds now, or that left the queue.

        Each is said once; the job's run here is cancelled (on the event loop) and writes no outcome.
        """
        for job_id, loss in losses:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._lose, job_id, loss)

    def _lose(self, job_id: str, loss: ClaimLoss) -> None:
        record = self.running.get(job_id)
        if record is None or record.state in (JobState.FINISHING, JobState.LOST):
            return  # done meanwhile: the outcome writer hears of the loss, if it matters
        self.losses.report(job_id, record.claim.token, loss)
        record.state = JobState.LOST
        record.cancel()

    async def cancel_aborted(self) -> None:
        """Cancel the running jobs a client asked to abort; forget aborts that were meant for an earlier job."""
        records = [record for record in self.running if record.state not in (JobState.FINISHING, JobState.LOST)]
        if not records:
            return
        abort_key = self.pool.key_layout.abort(self.queue_name)
        scores = await self.pool.zmscore(abort_key, [record.job_id for record in records])
        stale = []
        for record, score in zip(records, scores, strict=True):
            if score is None:
                continue
            if score < record.enqueue_ms:
                stale.append(record.job_id)  # asked before this job was enqueued: meant for an earlier job (arq #485)
                continue
            # cancelled again on every tick until it ends: on Python 3.11 a cancel can be lost inside a redis-py
            # call that has a socket timeout; the abort entry goes when the job's outcome is written
            if record.cancel() and record.state is JobState.RUNNING:
                record.state = JobState.ABORTING
        if stale:
            await self.pool.zrem(abort_key, *stale)

    def enforce_timeouts(self) -> None:
        """Cancel jobs still running well past their timeout (their own timeout's cancel was lost)."""
        now = asyncio.get_running_loop().time()
        for record in self.running.in_state(JobState.RUNNING, JobState.TIMED_OUT):
            if record.deadline is not None and now > record.deadline + _TIMEOUT_GRACE_S and record.cancel():
                record.state = JobState.TIMED_OUT
