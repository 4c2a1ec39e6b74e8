"""The worker: claims due jobs in batches, runs them concurrently, and writes their outcomes in batches.

One job's life on a runner worker, in round trips:
  claim    one script call claims up to ``max_jobs`` due jobs (payload, try counter, abort flag included);
  run      the coroutine runs under its timeout; the heartbeat keeps the claim alive meanwhile;
  finish   outcomes that arrive together are written by one script call, which also wakes ``Job.result()``.
An idle worker blocks on its queue's wake list, which runner producers push to, and still looks at the queue
every ``poll_delay`` for jobs written by arq producers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import tzinfo
from typing import Any
from uuid import uuid4

from runner.engine import keys, scripts
from runner.engine.client import RunnerRedis
from runner.engine.connection import RedisSettings, create_pool
from runner.engine.execution import REDIS_ERRORS, Claim, _Outcome
from runner.engine.functions import Function, Hook, func
from runner.engine.maintenance import Maintenance, async_check_health, check_health
from runner.engine.serializers import Deserializer, Serializer
from runner.engine.utils import (
    SecondsTimedelta,
    timestamp_ms,
    to_seconds,
)
from runner.errors import FailedJobs

logger = logging.getLogger("runner.worker")

__all__ = ["Worker", "async_check_health", "check_health"]


class Worker(Maintenance):
    """Runs jobs from one queue. The parameters and their defaults are arq's, plus ``lease``.

    Args:
        functions: coroutine functions, ``func(...)`` results or ``"module:attr"`` paths.
        queue_name: the sorted set to take jobs from.
        cron_jobs: ``cron(...)`` results to schedule.
        redis_settings: where Redis is, when ``redis_pool`` is not given.
        redis_pool: an open pool to use (the worker will not close it).
        burst: stop once the queue is empty.
        on_startup, on_shutdown: ``async def hook(ctx)`` run once around the worker's life.
        on_job_start, on_job_end, after_job_end: ``async def hook(ctx)`` run around each job; ``after_job_end``
            runs once the outcome is stored.
        handle_signals: stop gracefully on SIGINT/SIGTERM (a second signal stops at once).
        job_completion_wait: seconds running jobs get to finish on a graceful stop before they are requeued.
        max_jobs: jobs run concurrently.
        job_timeout: default per-job timeout (None: no timeout).
        keep_result: default seconds a result is kept (0: not stored).
        keep_result_forever: keep results with no expiry.
        poll_delay: the longest an idle worker waits before looking at the queue again.
        queue_read_limit: most jobs claimed in one round trip (default ``max(max_jobs * 5, 100)``, capped by free
            slots).
        max_tries: default number of runs a job gets.
        health_check_interval: seconds between health records.
        health_check_key: where the arq-compatible health record goes (default ``<queue>:health-check``).
        ctx: the dict every job's ctx starts from.
        retry_jobs: honour ``Retry`` and requeue jobs cancelled by a stop; when False both count as failures.
        allow_abort_jobs: cancel running jobs that a client aborts.
        max_burst_jobs: in burst mode, start at most this many jobs (negative: no limit).
        job_serializer, job_deserializer: the queue's serializer pair (default pickle).
        expires_extra_ms: used when the worker enqueues (cron).
        timezone: the zone cron schedules use when they name none.
        log_results: include return values in the job log lines.
        lease: seconds a claim lives without a heartbeat; a dead worker's jobs run again after at most this long.
    """

    def __init__(
        self,
        functions: Sequence[Function | Callable[..., Awaitable[Any]] | str] = (),
        *,
        queue_name: str | None = keys.default_queue_name,
        cron_jobs: Sequence[Any] | None = None,
        redis_settings: RedisSettings | None = None,
        redis_pool: RunnerRedis | None = None,
        burst: bool = False,
        on_startup: Hook | None = None,
        on_shutdown: Hook | None = None,
        on_job_start: Hook | None = None,
        on_job_end: Hook | None = None,
        after_job_end: Hook | None = None,
        handle_signals: bool = True,
        job_completion_wait: SecondsTimedelta = 0,
        max_jobs: int = 10,
        job_timeout: SecondsTimedelta | None = 300,
        keep_result: SecondsTimedelta = 3600,
        keep_result_forever: bool = False,
        poll_delay: SecondsTimedelta = 0.5,
        queue_read_limit: int | None = None,
        max_tries: int = 5,
        health_check_interval: SecondsTimedelta = 3600,
        health_check_key: str | None = None,
        ctx: dict[str, Any] | None = None,
        retry_jobs: bool = True,
        allow_abort_jobs: bool = False,
        max_burst_jobs: int = -1,
        job_serializer: Serializer | None = None,
        job_deserializer: Deserializer | None = None,
        expires_extra_ms: int = keys.expires_extra_ms_default,
        timezone: tzinfo | None = None,
        log_results: bool = True,
        lease: SecondsTimedelta = 10,
    ) -> None:
        self.functions: dict[str, Any] = {}
        for entry in functions:
            function = entry if isinstance(entry, Function) else func(entry)
            self._add_function(function)
        self.cron_jobs = list(cron_jobs or [])
        for cron_job in self.cron_jobs:
            self._add_function(cron_job)
        if not self.functions:
            raise ValueError("at least one function or cron job must be registered")
        if max_jobs < 1:
            raise ValueError(f"max_jobs must be at least 1 (got {max_jobs})")
        self.queue_name = queue_name or keys.default_queue_name
        self.redis_settings = redis_settings or RedisSettings()
        self._pool = redis_pool
        self._own_pool = redis_pool is None
        self.burst = burst
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        self.on_job_start = on_job_start
        self.on_job_end = on_job_end
        self.after_job_end = after_job_end
        self.handle_signals = handle_signals
        self.job_completion_wait_s = to_seconds(job_completion_wait) or 0.0
        self.max_jobs = max_jobs
        self.job_timeout_s = to_seconds(job_timeout)
        self.keep_result_s = to_seconds(keep_result) or 0.0
        self.keep_result_forever = keep_result_forever
        self.poll_delay_s = to_seconds(poll_delay) or 0.0
        self.queue_read_limit = queue_read_limit or max(max_jobs * 5, 100)
        self.max_tries = max_tries
        self.health_check_interval_s = to_seconds(health_check_interval) or 3600.0
        self.health_check_key = health_check_key or keys.health_check_key(self.queue_name)
        self.ctx: dict[str, Any] = ctx if ctx is not None else {}
        self.retry_jobs = retry_jobs
        self.allow_abort_jobs = allow_abort_jobs
        self.max_burst_jobs = max_burst_jobs
        self.job_serializer = job_serializer
        self.job_deserializer = job_deserializer
        self.expires_extra_ms = expires_extra_ms
        self.timezone = timezone
        self.log_results = log_results
        self.lease_ms = max(int((to_seconds(lease) or 10.0) * 1000), 1000)
        self.worker_id = uuid4().hex[:12]

        self.jobs_complete = 0
        self.jobs_failed = 0
        self.jobs_retried = 0
        self.jobs_started = 0
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._aborting: set[str] = set()
        self._enqueued_ms: dict[str, int] = {}  # running job -> its enqueue time, to tell stale aborts apart
        self._deadlines: dict[str, float] = {}  # running job -> loop time its timeout ends
        self._timed_out: set[str] = set()
        self._requeue_scores: dict[str, int] = {}
        self._outcomes: list[_Outcome] = []
        # ids whose outcome is queued or written: the heartbeat renews their claims but never takes them back
        self._finishing: set[str] = set()
        # orders heartbeats and outcome writes, so a heartbeat sent before an outcome never lands after it
        self._claims_lock: asyncio.Lock | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[Any]] = []
        self._slot_free: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._stop_requests = 0
        self._outage_since: float | None = None
        self._main_task: asyncio.Task[None] | None = None

    def _add_function(self, function: Any) -> None:
        if function.name in self.functions:
            raise ValueError(f"two functions or cron jobs are named {function.name!r}; names must be unique")
        self.functions[function.name] = function

    # -- running ---------------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Run until stopped (or, with ``burst``, until the queue is empty), then close the pool."""
        asyncio.run(self.async_run())

    async def run_check(self, retry_jobs: bool | None = None, max_burst_jobs: int | None = None) -> int:
        """Run in burst mode and return the number of jobs completed.

        Raises:
            FailedJobs: some jobs failed; the exception carries their results.
        """
        if retry_jobs is not None:
            self.retry_jobs = retry_jobs
        if max_burst_jobs is not None:
            self.max_burst_jobs = max_burst_jobs
        self.burst = True
        try:
            await self._run()
            if self.jobs_failed:
                failed = [r for r in await self.pool.all_job_results() if not r.success]
                raise FailedJobs(self.jobs_failed, failed)
        finally:
            await self.close()
        return self.jobs_complete

    async def async_run(self) -> None:
        """Run in the current event loop until stopped, then close the pool if the worker opened it."""
        try:
            await self._run()
        finally:
            await self.close()

    async def _run(self) -> None:
        self._main_task = asyncio.current_task()
        self._claims_lock = asyncio.Lock()  # made per run: a lock belongs to the loop that first waits on it
        self._stop = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._stopping = False
        self._stop_requests = 0
        loop = asyncio.get_running_loop()
        if self.handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self._startup()
            try:
                await self._poll_loop()
            finally:
                await self._shutdown()
        finally:
            if self.handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    def _on_signal(self, signum: int) -> None:
        action = "forcing stop" if self._stopping else "stopping"
        logger.info("received %s, %s", signal.Signals(signum).name, action)
        self.request_stop()

    def request_stop(self) -> None:
        """Stop taking jobs and shut down gracefully; a second call cancels running jobs at once (they are
        requeued)."""
        self._stop_requests += 1
        self._stopping = True
        if self._stop is not None:
            self._stop.set()
        if self._stop_requests > 1:
            for job_id, task in list(self.tasks.items()):
                if not task.done():
                    task.cancel()
                    logger.debug("cancelled %s on forced stop", job_id)

    async def close(self) -> None:
        """Close the pool if the worker opened it (``async_run`` does this itself when it ends)."""
        if self._pool is not None and self._own_pool:
            await self._pool.aclose()
            self._pool = None

    async def _startup(self) -> None:
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings,
                job_serializer=self.job_serializer,
                job_deserializer=self.job_deserializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        pool = self.pool
        self._claim_script = pool.register_script(scripts.CLAIM)
        self._finish_script = pool.register_script(scripts.FINISH)
        self._heartbeat_script = pool.register_script(scripts.HEARTBEAT)
        logger.info(
            "worker %s on %s: %d functions: %s",
            self.worker_id,
            self.queue_name,
            len(self.functions),
            ", ".join(self.functions),
        )
        self.ctx["redis"] = pool
        if self.on_startup is not None:
            await self.on_startup(self.ctx)
        self._closing = asyncio.Event()
        self._maintenance = asyncio.create_task(self._maintenance_loop())
        if self.cron_jobs:
            from runner.engine.cron import CronScheduler

            scheduler = CronScheduler(self.cron_jobs, pool=pool, queue_name=self.queue_name, default_tz=self.timezone)
            self._background.append(asyncio.create_task(scheduler.run()))

    async def _shutdown(self) -> None:
        self._stopping = True
        if self.tasks and self.job_completion_wait_s > 0 and self._stop_requests < 2:
            logger.info("waiting up to %gs for %d running jobs", self.job_completion_wait_s, len(self.tasks))
            await asyncio.wait(list(self.tasks.values()), timeout=self.job_completion_wait_s)
        if self.tasks:
            logger.info("requeueing %d running jobs", len(self.tasks))
            for task in self.tasks.values():
                task.cancel()
            await asyncio.wait(list(self.tasks.values()), timeout=30)
        # the maintenance loop is asked to end rather than cancelled, so no Redis call is cut off halfway
        self._closing.set()
        try:
            await asyncio.wait_for(self._maintenance, 10)
        except Exception as exc:
            logger.debug("maintenance loop ended with %r", exc)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._flusher), 30)
        try:
            await self._clear_health()
        except REDIS_ERRORS:
            pass
        if self.on_shutdown is not None:
            await self.on_shutdown(self.ctx)
        logger.info(
            "worker %s stopped: j_complete=%d j_failed=%d j_retried=%d",
            self.worker_id,
            self.jobs_complete,
            self.jobs_failed,
            self.jobs_retried,
        )

    # -- the poll loop ---------------------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        assert self._slot_free is not None
        while not self._stopping:
            limit = min(self.max_jobs - len(self.tasks), self.queue_read_limit)
            if self.burst and self.max_burst_jobs >= 0:
                remaining = self.max_burst_jobs - self.jobs_started
                if remaining <= 0:
                    await self._wait_for_tasks()
                    return
                limit = min(limit, remaining)
            if limit <= 0:
                self._slot_free.clear()
                await self._wait_any(self._slot_free.wait())
                continue
            try:
                next_due, claims = await self._claim(limit)
            except REDIS_ERRORS as exc:
                await self._outage(exc)
                continue
            self._recovered()
            for claim in claims:
                self._start(claim)
            if len(claims) == limit:
                continue
            if self.burst:
                if self.tasks:
                    self._slot_free.clear()
                    await self._wait_any(self._slot_free.wait(), timeout=self._idle_timeout(next_due))
                    continue
                if self._flusher is not None and not self._flusher.done():
                    # outcomes still being written keep their jobs in the queue: let them land first
                    await asyncio.wait({self._flusher})
                    continue
                try:
                    if await self.pool.zcard(self.queue_name) == 0:
                        return
                except REDIS_ERRORS as exc:
                    await self._outage(exc)
                    continue
            await self._wait_for_wake(self._idle_timeout(next_due))

    def _idle_timeout(self, next_due: int | None) -> float:
        wait = self.poll_delay_s
        if next_due is not None:
            wait = min(wait, max(next_due - timestamp_ms(), 0) / 1000)
        return wait

    async def _wait_for_tasks(self) -> None:
        while self.tasks:
            await asyncio.wait(list(self.tasks.values()))

    async def _wait_any(self, awaitable: Awaitable[Any], timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait for ``awaitable``, a stop request, or the timeout, whichever comes first."""
        assert self._stop is not None
        first = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({first, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (first, stop):
                if not fut.done():
                    fut.cancel()
            await asyncio.gather(first, stop, return_exceptions=True)

    async def _wait_for_wake(self, timeout: float) -> None:  # noqa: ASYNC109
        """Block until a producer pushes a wake token, or ``timeout`` seconds."""
        # a blocking read must end before the socket timeout, or a quiet queue would look like an outage;
        # the poll loop simply blocks again
        socket_timeout = self.pool.connection_pool.connection_kwargs.get("socket_timeout")
        block_s = timeout if not socket_timeout else min(timeout, max(socket_timeout * 0.8, socket_timeout - 1))
        if block_s < 0.005:  # BLPOP rounds a tiny timeout down to 0, which blocks for ever
            await asyncio.sleep(block_s)
            return

        async def blpop() -> None:
            try:
                await self.pool.blpop([keys.wake_key(self.queue_name)], timeout=block_s)
            except REDIS_ERRORS as exc:
                await self._outage(exc)

        await self._wait_any(blpop(), timeout=block_s + 1)

    async def _claim(self, limit: int) -> tuple[int | None, list[Claim]]:
        raw = await self._claim_script(
            keys=[self.queue_name, keys.abort_jobs_ss, keys.wake_key(self.queue_name)],
            args=[
                timestamp_ms(),
                limit,
                self.lease_ms,
                keys.job_key_prefix,
                keys.in_progress_key_prefix,
                keys.retry_key_prefix,
                keys.retry_key_ttl_s,
                1 if self.allow_abort_jobs else 0,
            ],
        )
        next_due = int(float(raw[0]))
        claims = [
            Claim(raw[i].decode(), int(float(raw[i + 1])), raw[i + 2], int(raw[i + 3]), int(float(raw[i + 4])))
            for i in range(1, len(raw), 5)
        ]
        return (None if next_due < 0 else next_due), claims

    def _start(self, claim: Claim) -> None:
        self.jobs_started += 1
        task = asyncio.create_task(self._run_job(claim))
        self.tasks[claim.job_id] = task
        task.add_done_callback(functools.partial(self._job_done, claim.job_id))

    def _job_done(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self.tasks.get(job_id) is task:
            del self.tasks[job_id]
            self._finishing.discard(job_id)
            self._enqueued_ms.pop(job_id, None)
            self._deadlines.pop(job_id, None)
            self._timed_out.discard(job_id)
            self._aborting.discard(job_id)
        assert self._slot_free is not None
        self._slot_free.set()
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            logger.error("internal error finishing job %s: %r", job_id, exc, exc_info=exc)

    def __repr__(self) -> str:
        return (
            f"<Worker {self.worker_id} queue={self.queue_name} j_complete={self.jobs_complete} "
            f"j_failed={self.jobs_failed} j_retried={self.jobs_retried} j_ongoing={len(self.tasks)}>"
        )
