"""The job runner: runs one claimed job, from its payload to the outcome it hands the outcome writer.

It decodes the payload, refuses what cannot run (expired, undecodable, aborted before start, unknown function,
out of tries), runs the function under its timeout between the hooks, publishes a job event at every step, and
turns the way the function ended into one ``Outcome``.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from dataclasses import dataclass
from typing import Any

from runner.engine import keys
from runner.engine.client import RunnerRedis
from runner.engine.deadlines import Deadlines
from runner.engine.events import JobEvent, JobEventKind, JobEvents
from runner.engine.executors.dispatch import JobExecutors, contained
from runner.engine.functions import Function, Hook
from runner.engine.job import deserialize_job_raw, serialize_result
from runner.engine.job_context import JobContext, enter_job
from runner.engine.lifecycle import REDIS_ERRORS
from runner.engine.outcomes import OutcomeWriter
from runner.engine.protocol import Outcome, OutcomeKind
from runner.engine.records import DecodedJob, JobRecord, JobState
from runner.engine.serializers import Deserializer, Serializer
from runner.engine.utils import ms_to_datetime, timestamp_ms
from runner.errors import DeserializationError, JobExecutionFailed, Retry, RetryJob

# a job that starts this long after it was due says so in its log line
_DELAYED_MS = 1200


@dataclass(frozen=True, slots=True)
class JobSettings:
    """The worker-wide defaults a job runs under (a function's own settings win where it has them)."""

    queue_name: str
    job_timeout_s: float | None
    keep_result_s: float
    keep_result_forever: bool
    max_tries: int
    retry_jobs: bool
    lease_s: float = 10.0
    serializer: Serializer | None = None
    deserializer: Deserializer | None = None

    def timeout_s(self, function: Function) -> float | None:
        return self.job_timeout_s if function.timeout_s is None else function.timeout_s

    def keep_ms(self, function: Function | None) -> int:
        """How long a result is kept: ms, -1 forever, 0 not stored; a function's settings apply even to early
        failures (arq #417)."""
        keep_forever, keep_s = self.keep_result_forever, self.keep_result_s
        if function is not None:
            if function.keep_result_forever is not None:
                keep_forever = function.keep_result_forever
            if function.keep_result_s is not None:
                keep_s = function.keep_result_s
        return -1 if keep_forever else int(keep_s * 1000)


@dataclass(frozen=True, slots=True)
class JobHooks:
    """``async def hook(ctx)`` callables run around every job (None: not set)."""

    on_job_start: Hook | None = None
    on_job_end: Hook | None = None
    after_job_end: Hook | None = None


class JobRunner:
    """Runs claimed jobs, one ``run(record)`` call per job.

    Args:
        settings: the worker-wide defaults.
        functions: the functions (and cron jobs) by name.
        ctx: the dict every job's ctx starts from.
        pool: the worker's Redis client.
        writer: where outcomes go.
        events: where job events go.
        hooks: the per-job hooks.
        executors: where job functions run (the loop, threads, job subprocesses).
    """

    def __init__(
        self,
        *,
        settings: JobSettings,
        functions: dict[str, Function],
        ctx: dict[str, Any],
        pool: RunnerRedis,
        writer: OutcomeWriter,
        events: JobEvents,
        hooks: JobHooks,
        executors: JobExecutors,
    ) -> None:
        self.settings = settings
        self.functions = functions
        self.ctx = ctx
        self.pool = pool
        self.writer = writer
        self.events = events
        self.hooks = hooks
        self.executors = executors
        self.deadlines = Deadlines()
        # the most tries any function allows (the limit before the payload says which runs)
        limits = [function.max_tries for function in functions.values() if function.max_tries is not None]
        self._most_tries = max([settings.max_tries, *limits])

    async def run(self, record: JobRecord) -> None:
        """Run one job to its outcome; a failing hook or worker fault fails the job instead of leaving it claimed."""
        try:
            await self._run(record)
        except Exception as exc:
            self._publish(record, JobEventKind.FAILED, error=exc, internal=True)
            error = JobExecutionFailed(f"failed outside the job function: {type(exc).__name__}: {exc}")
            # what is known for sure about the job: nothing of its payload, which may be what failed
            payload = self._result(record.job_id, None, record.claim.job_try, False, error, timestamp_ms())
            await self._write(record, Outcome(record.job_id, OutcomeKind.FAILED, payload, self.settings.keep_ms(None)))

    async def _run(self, record: JobRecord) -> None:
        function = await self._admit(record)
        if function is None:
            return
        job = record.job
        assert job is not None
        # each job runs in a task of its own, so this names the job in every record its code logs (job_context.py)
        enter_job(JobContext(record.job_id, job.function, record.job_try, self.settings.queue_name))
        ctx = self._job_ctx(record, job)
        if self.hooks.on_job_start is not None:
            await self.hooks.on_job_start(ctx)
        record.start_ms = timestamp_ms()
        late_ms = record.start_ms - record.claim.score
        self._publish(
            record,
            JobEventKind.STARTED,
            since_enqueue_s=(record.start_ms - job.enqueue_ms) / 1000,
            args=job.args,
            kwargs=job.kwargs,
            delayed_s=late_ms / 1000 if late_ms > _DELAYED_MS else 0.0,
        )
        try:
            result = await self._call(record, function, job, ctx)
        except (Exception, asyncio.CancelledError) as exc:
            record.deadline = None
            current = asyncio.current_task()
            if current is not None and isinstance(exc, asyncio.CancelledError):
                current.uncancel()
            if isinstance(exc, asyncio.CancelledError) and record.state is JobState.TIMED_OUT:
                exc = TimeoutError()  # the deadline timer's cancel (or the lease keeper's, when that one was lost)
            await self._raised(record, function, ctx, exc)
        else:
            record.deadline = None
            self._publish(record, JobEventKind.COMPLETE, duration_s=_since(record.start_ms), result=result)
            if self.hooks.on_job_end is not None:
                await self.hooks.on_job_end(ctx)
            await self._finish(record, function, True, result)
        if self.hooks.after_job_end is not None:
            await self.hooks.after_job_end(ctx)

    async def _call(self, record: JobRecord, function: Function, job: DecodedJob, ctx: dict[str, Any]) -> Any:
        """Call the job function on its executor; its timeout starts when the function does (a wait for a free
        thread or process does not count)."""
        timeout_s = self.settings.timeout_s(function)
        if function.executor == "async":
            # JobExecutors.call's async branch, timed by the shared deadline timer (deadlines.py) instead of an
            # asyncio.timeout per job
            if timeout_s is not None:
                if record.task is None:  # run by hand, not started by the poll loop: the timer cancels this task
                    record.task = asyncio.current_task()
                self.deadlines.add(record, asyncio.get_running_loop().time() + timeout_s)
            return await contained(function.coroutine(ctx, *job.args, **job.kwargs))

        def started() -> None:
            if timeout_s is not None:
                record.deadline = asyncio.get_running_loop().time() + timeout_s

        return await self.executors.call(
            function,
            ctx,
            job.args,
            job.kwargs,
            timeout_s=timeout_s,
            label=f"{record.job_id}:{job.function}",
            on_start=started,
            on_thread=record.ran_in,
        )

    def _job_ctx(self, record: JobRecord, job: DecodedJob) -> dict[str, Any]:
        """The ctx one job's function and hooks get: the worker's, with the job's own keys (arq's names)."""
        return {
            **self.ctx,
            "job_id": record.job_id,
            "job_try": record.job_try,
            "enqueue_time": ms_to_datetime(job.enqueue_ms),
            "score": record.claim.score,
        }

    async def _admit(self, record: JobRecord) -> Function | None:
        """Decode the job and check it may run: its function, or None once it has failed for not being able to."""
        claim = record.claim
        record.start_ms = timestamp_ms()
        record.job_try = claim.job_try
        if not claim.payload:
            return await self._refuse(record, None, JobExecutionFailed("job expired"), "expired before it ran")
        # the claim counted this try before anything is decoded: a payload that kills every worker decoding it
        # (os._exit from a crafted pickle) is failed here, undecoded, once the most any function allows is used up
        most = self._most_tries
        if record.job_try > most:
            message = f"max {most} retries exceeded"
            return await self._refuse(record, None, JobExecutionFailed(message), f"{message} (not decoded)")
        try:
            record.job = DecodedJob(*deserialize_job_raw(claim.payload, deserializer=self.settings.deserializer))
        except DeserializationError as exc:
            return await self._refuse(record, None, exc, f"has a payload that cannot be decoded ({exc})")
        except BaseException as exc:  # noqa: B036 - SystemExit, KeyboardInterrupt or CancelledError from the data
            # a crafted payload must not stop the worker (nor every worker that takes the job after it)
            error = JobExecutionFailed(f"decoding the payload raised {type(exc).__name__}({exc})")
            return await self._refuse(record, None, error, f"has a payload that cannot be decoded ({error})")
        job = record.job
        function = self.functions.get(job.function)
        if claim.abort_ms and claim.abort_ms >= job.enqueue_ms:
            return await self._refuse(
                record, function, asyncio.CancelledError(), "aborted before start", JobEventKind.ABORTED
            )
        if function is None:
            error = JobExecutionFailed(f"function {job.function!r} not found")
            detail = f"names a function this worker does not have; registered: {', '.join(self.functions)}"
            return await self._refuse(record, None, error, detail)
        if job.payload_try and job.payload_try > record.job_try:
            record.job_try = job.payload_try
            with contextlib.suppress(*REDIS_ERRORS):
                retry_key = self.pool.key_layout.retry(self.settings.queue_name, record.job_id)
                await self.pool.set(retry_key, str(record.job_try), ex=keys.retry_key_ttl_s)
        max_tries = self.settings.max_tries if function.max_tries is None else function.max_tries
        if record.job_try > max_tries:
            message = f"max {max_tries} retries exceeded"
            return await self._refuse(record, function, JobExecutionFailed(message), message)
        return function

    async def _refuse(
        self,
        record: JobRecord,
        function: Function | None,
        error: BaseException,
        detail: str,
        kind: JobEventKind = JobEventKind.FAILED,
    ) -> Function | None:
        """Fail a job that cannot start; returns None for ``_admit`` to hand on."""
        since = (timestamp_ms() - (record.enqueue_ms or record.start_ms)) / 1000
        self._publish(record, kind, since_enqueue_s=since, detail=detail, error=error)
        await self._finish(record, function, False, error)
        return None

    async def _raised(self, record: JobRecord, function: Function, ctx: dict[str, Any], exc: BaseException) -> None:
        """The function raised (or was cancelled, or timed out): retry, requeue, or fail it."""
        duration = _since(record.start_ms)
        retry_jobs = self.settings.retry_jobs
        if isinstance(exc, asyncio.CancelledError) and record.state is JobState.LOST:
            return  # another worker holds the claim now (ClaimLosses said so): this run writes nothing
        if retry_jobs and isinstance(exc, Retry):
            defer_ms = exc.defer_score or 0
            detail = f"retrying in {defer_ms / 1000:.2f}s"
            self._publish(record, JobEventKind.RETRIED, duration_s=duration, detail=detail)
            await self._again(record, ctx, OutcomeKind.RETRY, timestamp_ms() + defer_ms)
            return
        if retry_jobs and isinstance(exc, RetryJob):
            # the function ended this try itself: it counts (unlike a stop's requeue), at the score it had, as arq
            self._publish(record, JobEventKind.RETRIED, duration_s=duration, detail="asked to run again")
            await self._again(record, ctx, OutcomeKind.RETRY, record.claim.score)
            return
        if isinstance(exc, asyncio.CancelledError) and record.state is JobState.ABORTING:
            self._publish(record, JobEventKind.ABORTED, duration_s=duration, detail="aborted")
        elif isinstance(exc, asyncio.CancelledError) and retry_jobs and record.still_running():
            # its thread cannot be stopped: requeued now, the job could run elsewhere while it still runs here.
            # Its claim is left to lapse instead, once this worker no longer renews it
            detail = (
                f"cut off by the stop while its thread still runs; it runs again once its claim lapses "
                f"(at most {self.settings.lease_s:g}s after this worker stops)"
            )
            self._publish(record, JobEventKind.REQUEUED, duration_s=duration, detail=detail)
            if self.hooks.on_job_end is not None:
                await self.hooks.on_job_end(ctx)
            record.state = JobState.FINISHING
            return
        elif isinstance(exc, asyncio.CancelledError) and retry_jobs:
            # a stop's cancel: it runs again at the score it had, as arq does, and keeps the try (it did not end it)
            detail = "cancelled by the stop, will run again"
            self._publish(record, JobEventKind.REQUEUED, duration_s=duration, detail=detail)
            await self._again(record, ctx, OutcomeKind.REQUEUE, record.claim.score)
            return
        else:
            detail = "failed"
            if isinstance(exc, TimeoutError):
                detail = "timed out"
                if not str(exc):
                    # asyncio's own timeout says nothing: say which limit it hit
                    exc = TimeoutError(f"the job ran longer than its timeout of {self.settings.timeout_s(function):g}s")
            self._publish(record, JobEventKind.FAILED, duration_s=duration, error=exc, detail=detail)
            if not isinstance(exc, asyncio.CancelledError):
                # pickle keeps an exception's __dict__, so `runner jobs show` can print where it was raised
                with contextlib.suppress(AttributeError, TypeError):
                    exc.__dict__["runner_traceback"] = "".join(traceback.format_exception(exc))
        if self.hooks.on_job_end is not None:
            await self.hooks.on_job_end(ctx)
        await self._finish(record, function, False, exc)

    async def _again(self, record: JobRecord, ctx: dict[str, Any], kind: OutcomeKind, score: int) -> None:
        """The job runs again at ``score``."""
        if self.hooks.on_job_end is not None:
            await self.hooks.on_job_end(ctx)
        await self._write(record, Outcome(record.job_id, kind, score=score))

    async def _finish(self, record: JobRecord, function: Function | None, success: bool, result: Any) -> None:
        """The job is done: its result (when kept) is stored and it leaves the queue."""
        keep_ms = self.settings.keep_ms(function)
        payload = b""
        if keep_ms != 0:
            payload = self._result(record.job_id, record.job, record.job_try, success, result, record.start_ms)
        kind = OutcomeKind.COMPLETE if success else OutcomeKind.FAILED
        await self._write(record, Outcome(record.job_id, kind, payload, keep_ms))

    def _result(
        self, job_id: str, job: DecodedJob | None, job_try: int, success: bool, result: Any, start_ms: int
    ) -> bytes:
        if job is None:
            job = DecodedJob("<unknown>", (), {}, None, 0)
        data = serialize_result(
            job.function,
            job.args,
            job.kwargs,
            job_try,
            job.enqueue_ms,
            success,
            result,
            start_ms,
            timestamp_ms(),
            f"{job_id}:{job.function}",
            self.settings.queue_name,
            job_id,
            serializer=self.settings.serializer,
        )
        return data or b""

    async def _write(self, record: JobRecord, outcome: Outcome) -> None:
        """Hand the outcome to the writer; only an ``after_job_end`` hook makes the job wait until it is stored.

        The outcome carries the claim's holder token: finish.lua applies it only while the claim is still ours.
        """
        if record.state is JobState.LOST:
            return
        outcome.token = record.claim.token
        outcome.flow = record.claim.flow
        record.state = JobState.FINISHING
        await self.writer.write(outcome, wait=self.hooks.after_job_end is not None)

    def _publish(self, record: JobRecord, kind: JobEventKind, **details: Any) -> None:
        function = "<unknown>" if record.job is None else record.job.function
        self.events.publish(
            JobEvent(kind, self.settings.queue_name, record.job_id, function, record.job_try, **details)
        )


def _since(start_ms: int) -> float:
    return (timestamp_ms() - start_ms) / 1000
