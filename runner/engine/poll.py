"""The poll loop: claims due jobs in batches as slots free up, and starts each one as a task.

An idle worker blocks on its queue's wake list, which runner producers push to, and still looks at the queue
every ``poll_delay`` for jobs written by arq producers. In burst mode the loop ends once nothing is running,
no outcome is on its way, and the queue is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from uuid import uuid4

from redis.commands.core import AsyncScript

from runner.engine import keys
from runner.engine.budget import JobBudget
from runner.engine.client import RunnerRedis
from runner.engine.events import JobCounts
from runner.engine.flow import flow_keys
from runner.engine.job_runner import JobRunner
from runner.engine.lifecycle import REDIS_ERRORS, Lifecycle, Outage
from runner.engine.outcomes import OutcomeWriter
from runner.engine.protocol import Claim, ClaimReply, parse_claim_reply
from runner.engine.records import JobRecord, JobState, RunningJobs
from runner.engine.utils import timestamp_ms

logger = logging.getLogger("runner.worker")


@dataclass(frozen=True, slots=True)
class PollSettings:
    """How the loop claims: batch sizes, burst mode, and how long it idles."""

    queue_name: str
    max_jobs: int
    queue_read_limit: int
    lease_ms: int
    poll_delay_s: float
    burst: bool
    max_burst_jobs: int
    allow_abort_jobs: bool
    worker_id: str = "worker"


class PollLoop:
    """Claims and starts jobs until the worker stops (or, in burst mode, runs out of work).

    Args:
        settings: see ``PollSettings``.
        pool: the worker's Redis client.
        script: ``claim.lua``, registered on the pool.
        running: the registry the started jobs go into.
        runner: runs each started job.
        writer: burst mode waits for its pending outcomes before it looks at the queue.
        counts: ``started`` counts the claims started (``max_burst_jobs`` limits it).
        lifecycle: the loop ends when a stop begins.
        outage: the worker's outage policy.
        budget: the process's job budget (recycling); each claim takes from it first.
        confirm: renews every claim of the registry now (``LeaseKeeper.heartbeat``); a claim answered late is
            confirmed with it before its job starts.
    """

    def __init__(
        self,
        *,
        settings: PollSettings,
        pool: RunnerRedis,
        script: AsyncScript,
        running: RunningJobs,
        runner: JobRunner,
        writer: OutcomeWriter,
        counts: JobCounts,
        lifecycle: Lifecycle,
        outage: Outage,
        budget: JobBudget | None = None,
        confirm: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.script = script
        self.running = running
        self.runner = runner
        self.writer = writer
        self.counts = counts
        self.lifecycle = lifecycle
        self.outage = outage
        self.budget = budget or JobBudget()
        self.confirm = confirm
        self._slot_waiter: asyncio.Future[None] | None = None  # the loop's wait for a free slot, when it waits
        layout, queue = pool.key_layout, settings.queue_name
        self._claim_keys = [
            layout.queue(queue),
            layout.abort(queue),
            layout.wake(queue),
            layout.job_prefix(queue),
            layout.in_progress_prefix(queue),
            layout.retry_prefix(queue),
        ]
        self._flow_keys = flow_keys(layout, queue)
        self._wake_key = layout.wake(queue)
        self._queue_key = layout.queue(queue)
        # the worker's id, and this run's own part: a worker run twice never reuses a token
        self._token_prefix = f"{settings.worker_id}.{uuid4().hex[:8]}"
        self._calls = 0
        self._token: str | None = None  # the token of a claim call that raised, sent again by the next one

    async def run(self) -> None:
        """Claim and start jobs until a stop begins or a burst is done."""
        try:
            await self._run_polls()
        finally:
            self.writer.resume()

    async def _run_polls(self) -> None:
        settings = self.settings
        while not self.lifecycle.stopping:
            limit = min(settings.max_jobs - len(self.running), settings.queue_read_limit)
            if settings.burst and settings.max_burst_jobs >= 0:
                remaining = settings.max_burst_jobs - self.counts.started
                if remaining <= 0:
                    self.writer.resume()
                    await self.running.wait_all()
                    return
                limit = min(limit, remaining)
            if limit <= 0:
                await self._wait_for_slot()
                continue
            limit = self.budget.take(limit)
            if limit <= 0:
                await self._retire()
                return
            sent = time.monotonic()
            try:
                reply = await self.claim(limit)
            except REDIS_ERRORS as exc:
                self.budget.give_back(limit)
                await self.outage.failed(exc)
                continue
            self.budget.give_back(limit - len(reply.claims))
            self.budget.settle()
            self.outage.recovered()
            # a claim whose reply took a third of a lease may lapse before the lease thread's next renewal, or have
            # lapsed already (the worker was frozen, its loop or its link stalled) and its job run elsewhere
            if reply.claims and self.confirm is not None and time.monotonic() - sent >= settings.lease_ms / 3000:
                await self._start_confirmed(reply.claims)
            else:
                for claim in reply.claims:
                    self.start(claim)
            if len(reply.claims) == limit:
                continue
            if settings.burst:
                done = await self._burst_done(reply.next_due_ms)
                if done is None:
                    continue
                if done:
                    return
            await self._wait_for_wake(self._idle_timeout(reply.next_due_ms))

    async def _retire(self) -> None:
        """The process's job budget is spent: claim no more, let the running jobs finish (a stop cuts this short)."""
        self.writer.resume()
        logger.info(
            "worker on %s retiring after %s: no more claims; waiting for %d running jobs",
            self.settings.queue_name,
            self.budget.reason,
            len(self.running),
        )
        await self.lifecycle.wait_any(self.running.wait_all())

    async def _burst_done(self, next_due_ms: int | None) -> bool | None:
        """In burst mode, after a short claim: True when the burst is over, None to go round again at once."""
        if len(self.running):
            await self._wait_for_slot(self._idle_timeout(next_due_ms))
            return None
        if self.writer.busy:
            # outcomes still being written keep their jobs in the queue: let them land first
            await self.writer.wait_idle()
            return None
        try:
            return bool(await self.pool.zcard(self._queue_key) == 0)
        except REDIS_ERRORS as exc:
            await self.outage.failed(exc)
            return None

    async def claim(self, limit: int) -> ClaimReply:
        """Claim up to ``limit`` due jobs in one round trip.

        Each call has a holder token of its own, which its claims write into their in-progress keys. A call that
        raises may still have claimed jobs (its reply was lost), so the next call sends the same token again:
        claim.lua then hands those jobs over at once, without counting another try (see its header).
        """
        settings = self.settings
        if self._token is None:
            self._calls += 1
            self._token = f"{self._token_prefix}:{self._calls}"
        token = self._token
        layout = self.pool.key_layout
        call = self.script(
            keys=[*self._claim_keys, layout.claimed(settings.queue_name, token), *self._flow_keys],
            args=[
                timestamp_ms(),
                limit,
                settings.lease_ms,
                keys.retry_key_ttl_s,
                int(settings.allow_abort_jobs),
                token,
                1,  # flow control's steps (claim.lua): a few commands per call when no job uses it
            ],
        )
        # the outcomes held back while the loop waited for a slot go out once this call is on its way: the call
        # sends its command before it first waits, and the writer's task starts after that
        self.writer.resume()
        raw = await call
        self._token = None  # answered: the next call is a new one
        return parse_claim_reply(raw, token)

    async def _start_confirmed(self, claims: Sequence[Claim]) -> None:
        """Start jobs whose claims came back late only once a renewal has found the claims still this worker's.

        The renewal takes back a lapsed claim nobody took; a job another worker holds now, or that left the queue,
        is said once (``ClaimLosses``) and never starts here.
        """
        gate = asyncio.Event()  # not a future: cancelling one waiting job must not cancel the others' wait
        for claim in claims:
            self.start(claim, gate=gate)
        try:
            assert self.confirm is not None
            with contextlib.suppress(*REDIS_ERRORS):  # no answer: the lease thread goes on trying, as for any job
                await self.confirm()
        finally:
            gate.set()

    def start(self, claim: Claim, gate: asyncio.Event | None = None) -> JobRecord:
        """Start running one claimed job (once ``gate`` is done, if given); it stays in the registry until its
        task ends."""
        self.counts.started += 1
        record = JobRecord(claim)
        # without a gate the task runs the job runner's coroutine itself: one coroutine frame less per job
        job = self.runner.run(record) if gate is None else self._run(record, gate)
        record.task = asyncio.create_task(job)
        self.running.add(record)
        record.task.add_done_callback(functools.partial(self._job_done, record))
        return record

    async def _run(self, record: JobRecord, gate: asyncio.Event) -> None:
        await gate.wait()
        if record.state is JobState.LOST:
            return  # its claim was found taken: the loss is said, and the job is the other worker's
        await self.runner.run(record)

    def _job_done(self, record: JobRecord, task: asyncio.Task[None]) -> None:
        self.running.remove(record)
        _wake(self._slot_waiter)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            logger.error("internal error finishing job %s: %r", record.job_id, exc, exc_info=exc)

    async def _wait_for_slot(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Until a job ends, a stop is requested, or ``timeout`` seconds: one future that each of them resolves."""
        loop = asyncio.get_running_loop()
        waiter = self._slot_waiter = loop.create_future()
        self.writer.defer()  # the claim that follows a job's end goes out before that job's outcome
        timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
        self.lifecycle.wake_on_stop(waiter)
        try:
            await waiter
        finally:
            self._slot_waiter = None
            self.lifecycle.forget(waiter)
            if timer is not None:
                timer.cancel()

    def _idle_timeout(self, next_due_ms: int | None) -> float:
        wait = self.settings.poll_delay_s
        if next_due_ms is not None:
            wait = min(wait, max(next_due_ms - timestamp_ms(), 0) / 1000)
        return wait

    async def _wait_for_wake(self, timeout: float) -> None:  # noqa: ASYNC109
        """Block until a producer pushes a wake token, or ``timeout`` seconds."""
        # a blocking read must end before the socket timeout, or a quiet queue would look like an outage;
        # the poll loop simply blocks again
        socket_timeout = self.pool.reply_timeout_s()
        block_s = timeout if not socket_timeout else min(timeout, max(socket_timeout * 0.8, socket_timeout - 1))
        if block_s < 0.005:  # BLPOP rounds a tiny timeout down to 0, which blocks for ever
            await asyncio.sleep(block_s)
            return

        async def blpop() -> None:
            try:
                await self.pool.blpop([self._wake_key], timeout=block_s)
            except REDIS_ERRORS as exc:
                await self.outage.failed(exc)

        await self.lifecycle.wait_any(blpop(), timeout=block_s + 1)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
