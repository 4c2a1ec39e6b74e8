"""Running one claimed job, from its payload to its stored outcome, and writing outcomes in batches.

``JobExecution`` is the part of ``Worker`` that does this; ``Worker`` (runner/engine/worker.py) owns the state and
the poll loop, ``Maintenance`` (runner/engine/maintenance.py) the heartbeat, aborts and health records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from runner.engine import keys
from runner.engine.client import RunnerRedis
from runner.engine.functions import Hook
from runner.engine.job import deserialize_job_raw, serialize_result
from runner.engine.serializers import Deserializer, Serializer
from runner.engine.utils import args_to_string, ms_to_datetime, timestamp_ms, truncate
from runner.errors import DeserializationError, JobExecutionFailed, Retry

logger = logging.getLogger("runner.worker")

REDIS_ERRORS = (RedisError, OSError)


@dataclass(slots=True)
class Claim:
    job_id: str
    score: int
    payload: bytes
    job_try: int
    abort_ms: int  # when an abort was asked for this id, 0 if none


class _Outcome:
    """What to write for one job when its turn in the next batch comes."""

    __slots__ = ("job_id", "kind", "payload", "number", "future")

    def __init__(self, job_id: str, kind: str, payload: bytes, number: int, future: asyncio.Future[None]) -> None:
        self.job_id = job_id
        self.kind = kind
        self.payload = payload
        self.number = number
        self.future = future


class JobExecution:
    """Runs claimed jobs and writes their outcomes; a base of ``Worker``."""

    # state the Worker sets up in __init__ and _startup
    functions: dict[str, Any]
    queue_name: str
    ctx: dict[str, Any]
    job_serializer: Serializer | None
    job_deserializer: Deserializer | None
    job_timeout_s: float | None
    keep_result_s: float
    keep_result_forever: bool
    max_tries: int
    retry_jobs: bool
    log_results: bool
    on_job_start: Hook | None
    on_job_end: Hook | None
    after_job_end: Hook | None
    jobs_complete: int
    jobs_failed: int
    jobs_retried: int
    tasks: dict[str, asyncio.Task[None]]
    _pool: RunnerRedis | None
    _aborting: set[str]
    _deadlines: dict[str, float]
    _enqueued_ms: dict[str, int]
    _timed_out: set[str]
    _finishing: set[str]
    _outcomes: list[_Outcome]
    _flusher: asyncio.Task[None] | None
    _finish_script: AsyncScript
    _stop: asyncio.Event | None
    _stop_requests: int
    _outage_since: float | None
    _claims_lock: asyncio.Lock | None

    @property
    def pool(self) -> RunnerRedis:
        if self._pool is None:
            raise RuntimeError("the worker is not connected yet")
        return self._pool

    # -- running one job -------------------------------------------------------------------------------------------

    async def _run_job(self, claim: Claim) -> None:
        try:
            await self._execute(claim)
        except Exception as exc:
            # a hook or the machinery itself failed: the job fails with that error instead of staying claimed
            self.jobs_failed += 1
            logger.error("job %s failed outside its function: %r", claim.job_id, exc, exc_info=exc)
            error = JobExecutionFailed(f"failed outside the job function: {type(exc).__name__}: {exc}")
            await self._finish(claim.job_id, None, "<unknown>", (), {}, claim.job_try, 0, False, error, timestamp_ms())

    async def _execute(self, claim: Claim) -> None:  # noqa: C901 - one job's whole life, step by step
        job_id = claim.job_id
        job_try = claim.job_try
        start_ms = timestamp_ms()
        function_name, enqueue_ms = "<unknown>", 0
        args: tuple[Any, ...] = ()
        kwargs: dict[str, Any] = {}
        function: Any = None

        async def fail(exc: BaseException, message: str) -> None:
            self.jobs_failed += 1
            logger.warning(
                "%6.2fs ! %s:%s %s",
                (timestamp_ms() - (enqueue_ms or start_ms)) / 1000,
                job_id,
                function_name,
                message,
                extra=self._log_extra(job_id, function_name, job_try, None, "failed"),
            )
            await self._finish(job_id, function, function_name, args, kwargs, job_try, enqueue_ms, False, exc, start_ms)

        if not claim.payload:
            return await fail(JobExecutionFailed("job expired"), "expired before it ran")
        try:
            function_name, args, kwargs, payload_try, enqueue_ms = deserialize_job_raw(
                claim.payload, deserializer=self.job_deserializer
            )
        except DeserializationError as exc:
            return await fail(exc, f"has a payload that cannot be decoded ({exc})")
        function = self.functions.get(function_name)
        if claim.abort_ms and claim.abort_ms >= enqueue_ms:
            return await fail(asyncio.CancelledError(), "aborted before start")
        self._enqueued_ms[job_id] = enqueue_ms
        if function is None:
            return await fail(
                JobExecutionFailed(f"function {function_name!r} not found"),
                f"names a function this worker does not have; registered: {', '.join(self.functions)}",
            )
        if payload_try and payload_try > job_try:
            job_try = payload_try
            with contextlib.suppress(*REDIS_ERRORS):
                await self.pool.set(keys.retry_key_prefix + job_id, str(job_try), ex=keys.retry_key_ttl_s)
        max_tries = self.max_tries if function.max_tries is None else function.max_tries
        if job_try > max_tries:
            return await fail(
                JobExecutionFailed(f"max {max_tries} retries exceeded"), f"max {max_tries} retries exceeded"
            )

        ctx = {
            **self.ctx,
            "job_id": job_id,
            "job_try": job_try,
            "enqueue_time": ms_to_datetime(enqueue_ms),
            "score": claim.score,
        }
        timeout_s = self.job_timeout_s if function.timeout_s is None else function.timeout_s
        is_info = logger.isEnabledFor(logging.INFO)
        if self.on_job_start is not None:
            await self.on_job_start(ctx)
        start_ms = timestamp_ms()
        if is_info:
            extra = f" try={job_try}" if job_try > 1 else ""
            if start_ms - claim.score > 1200:
                extra += f" delayed={(start_ms - claim.score) / 1000:.2f}s"
            logger.info(
                "%6.2fs → %s:%s(%s)%s",
                (start_ms - enqueue_ms) / 1000,
                job_id,
                function_name,
                args_to_string(args, kwargs),
                extra,
                extra=self._log_extra(job_id, function_name, job_try, None, "started"),
            )
        if timeout_s is not None:
            self._deadlines[job_id] = asyncio.get_running_loop().time() + timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                result = await _contained(function.coroutine(ctx, *args, **kwargs))
        except (Exception, asyncio.CancelledError) as exc:
            current = asyncio.current_task()
            if current is not None and isinstance(exc, asyncio.CancelledError):
                current.uncancel()
            if isinstance(exc, asyncio.CancelledError) and job_id in self._timed_out:
                exc = TimeoutError()  # the watchdog's cancel: the timeout's own was lost (see _enforce_timeouts)
            await self._job_raised(
                exc, claim, ctx, function, function_name, args, kwargs, job_try, enqueue_ms, start_ms
            )
        else:
            self.jobs_complete += 1
            if is_info:
                shown = "" if result is None or not self.log_results else truncate(repr(result))
                duration = (timestamp_ms() - start_ms) / 1000
                logger.info(
                    "%6.2fs ← %s:%s ● %s",
                    duration,
                    job_id,
                    function_name,
                    shown,
                    extra=self._log_extra(job_id, function_name, job_try, duration, "complete"),
                )
            if self.on_job_end is not None:
                await self.on_job_end(ctx)
            await self._finish(
                job_id, function, function_name, args, kwargs, job_try, enqueue_ms, True, result, start_ms
            )
        if self.after_job_end is not None:
            await self.after_job_end(ctx)

    async def _job_raised(
        self,
        exc: BaseException,
        claim: Claim,
        ctx: dict[str, Any],
        function: Any,
        function_name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        job_try: int,
        enqueue_ms: int,
        start_ms: int,
    ) -> None:
        job_id = claim.job_id
        duration = (timestamp_ms() - start_ms) / 1000
        if self.retry_jobs and isinstance(exc, Retry):
            self.jobs_retried += 1
            defer_ms = exc.defer_score or 0
            logger.info(
                "%6.2fs ↻ %s:%s retrying in %.2fs",
                duration,
                job_id,
                function_name,
                defer_ms / 1000,
                extra=self._log_extra(job_id, function_name, job_try, duration, "retried"),
            )
            if self.on_job_end is not None:
                await self.on_job_end(ctx)
            await self._queue_outcome(job_id, "qr", b"", timestamp_ms() + defer_ms)
            return
        if isinstance(exc, asyncio.CancelledError) and job_id in self._aborting:
            self._aborting.discard(job_id)
            self.jobs_failed += 1
            logger.info(
                "%6.2fs ⊘ %s:%s aborted",
                duration,
                job_id,
                function_name,
                extra=self._log_extra(job_id, function_name, job_try, duration, "aborted"),
            )
        elif isinstance(exc, asyncio.CancelledError) and self.retry_jobs:
            self.jobs_retried += 1
            logger.info(
                "%6.2fs ↻ %s:%s cancelled by the stop, will run again",
                duration,
                job_id,
                function_name,
                extra=self._log_extra(job_id, function_name, job_try, duration, "requeued"),
            )
            if self.on_job_end is not None:
                await self.on_job_end(ctx)
            await self._queue_outcome(job_id, "q", b"", claim.score)
            return
        else:
            self.jobs_failed += 1
            outcome = "failed"
            if isinstance(exc, TimeoutError):
                outcome = "timed out"
                if not str(exc):
                    # asyncio's own timeout says nothing: say which limit it hit
                    limit = self.job_timeout_s if function.timeout_s is None else function.timeout_s
                    exc = TimeoutError(f"the job ran longer than its timeout of {limit:g}s")
            logger.warning(
                "%6.2fs ! %s:%s %s, %s: %s",
                duration,
                job_id,
                function_name,
                outcome,
                type(exc).__name__,
                exc,
                exc_info=not isinstance(exc, TimeoutError | asyncio.CancelledError),
                extra=self._log_extra(job_id, function_name, job_try, duration, "failed"),
            )
            if not isinstance(exc, asyncio.CancelledError):
                # pickle keeps an exception's __dict__, so `runner jobs show` can print where it was raised
                with contextlib.suppress(AttributeError, TypeError):
                    exc.__dict__["runner_traceback"] = "".join(traceback.format_exception(exc))
        if self.on_job_end is not None:
            await self.on_job_end(ctx)
        await self._finish(job_id, function, function_name, args, kwargs, job_try, enqueue_ms, False, exc, start_ms)

    def _log_extra(
        self, job_id: str, function: str, job_try: int, duration: float | None, outcome: str
    ) -> dict[str, Any]:
        return {
            "job_id": job_id,
            "function": function,
            "job_try": job_try,
            "duration": duration,
            "outcome": outcome,
            "queue": self.queue_name,
        }

    async def _finish(
        self,
        job_id: str,
        function: Any,
        function_name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        job_try: int,
        enqueue_ms: int,
        success: bool,
        result: Any,
        start_ms: int,
    ) -> None:
        """Store the outcome: the function's own keep_result settings apply even to early failures."""
        keep_forever = self.keep_result_forever
        keep_s = self.keep_result_s
        if function is not None:
            if function.keep_result_forever is not None:
                keep_forever = function.keep_result_forever
            if function.keep_result_s is not None:
                keep_s = function.keep_result_s
        payload = b""
        keep_ms = -1 if keep_forever else int(keep_s * 1000)
        if keep_ms != 0:
            payload = (
                serialize_result(
                    function_name,
                    args,
                    kwargs,
                    job_try,
                    enqueue_ms,
                    success,
                    result,
                    start_ms,
                    timestamp_ms(),
                    self.queue_name,
                    job_id,
                    serializer=self.job_serializer,
                )
                or b""
            )
        await self._queue_outcome(job_id, "fc" if success else "ff", payload, keep_ms)

    # -- writing outcomes in batches -------------------------------------------------------------------------------

    async def _queue_outcome(self, job_id: str, kind: str, payload: bytes, number: int) -> None:
        """Queue one job's outcome for the next batch (retried through outages).

        The job's slot is freed at once, so the next claim overlaps this write; only when an ``after_job_end`` hook
        must see the stored outcome does the job wait for it.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finishing.add(job_id)
        self._outcomes.append(_Outcome(job_id, kind, payload, number, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        if self.after_job_end is not None:
            await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            args: list[Any] = [
                keys.job_key_prefix,
                keys.in_progress_key_prefix,
                keys.retry_key_prefix,
                keys.result_key_prefix,
                keys.done_channel(self.queue_name),
                keys.stats_key_ttl_s,
            ]
            for outcome in batch:
                args += [outcome.job_id, outcome.kind, outcome.payload, outcome.number]
            while True:
                try:
                    # one stats hash per minute feeds `runner info`'s completions and failures per minute
                    stats = keys.stats_key(self.queue_name, timestamp_ms() // 60_000)
                    async with self._lock():
                        await self._finish_script(keys=[self.queue_name, keys.abort_jobs_ss, stats], args=args)
                    break
                except REDIS_ERRORS as exc:
                    # the outcomes wait in memory until Redis is back; the claims' leases keep the jobs safe
                    await self._outage(exc)
                    if self._stop_requests > 1:
                        logger.error("giving up writing %d outcomes; their jobs will run again", len(batch))
                        break
            self._recovered()
            for outcome in batch:
                if not outcome.future.done():
                    outcome.future.set_result(None)

    # -- outages ---------------------------------------------------------------------------------------------------

    async def _outage(self, exc: BaseException) -> None:
        """Log an outage once, then back off; called on every failed Redis call until one succeeds."""
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            logger.warning(
                "redis unreachable at %s (%s: %s); retrying until it is back",
                self.pool.settings_description,
                type(exc).__name__,
                exc,
            )
        delay = min(0.1 * 2 ** min(int(now - self._outage_since), 6), 2.0)
        if self._stop is not None and not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        else:
            await asyncio.sleep(delay)

    def _recovered(self) -> None:
        if self._outage_since is not None:
            logger.warning("redis reachable again after %.1fs", time.monotonic() - self._outage_since)
            self._outage_since = None

    def _lock(self) -> asyncio.Lock:
        if self._claims_lock is None:
            self._claims_lock = asyncio.Lock()
        return self._claims_lock


async def _contained(job: Awaitable[Any]) -> Any:
    """Await a job function; a ``sys.exit()`` or ``KeyboardInterrupt`` inside it fails that job only.

    Left alone, either would end the event loop, and every worker that took the job again would die the same way.
    """
    try:
        return await job
    except (SystemExit, KeyboardInterrupt) as exc:
        message = f"the job raised {type(exc).__name__}({exc}), which would have stopped the worker"
        raise JobExecutionFailed(message) from exc
