"""The worker: wires the parts that claim, run and finish jobs, and runs them from start to stop.

One job's life on a runner worker, in round trips and parts:
  claim    the poll loop (poll.py) claims up to ``max_jobs`` due jobs in one script call (payload, try
           counter and abort flag included) and puts a ``JobRecord`` for each in the registry (records.py);
  run      the job runner (job_runner.py) runs the coroutine under its timeout (one timer for all of them,
           deadlines.py) and publishes job events (events.py); the lease keeper (leases.py) keeps the claim alive,
           enforces aborts and cancels again a job whose timeout's cancel was lost;
  finish   the outcome writer (outcomes.py) writes outcomes that arrive together in one script call, which
           also wakes ``Job.result()``.
The health reporter (health.py) keeps the health records; the lifecycle (lifecycle.py) is one state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import tzinfo
from typing import Any
from uuid import uuid4

from runner.engine import keys, loops, scripts
from runner.engine.budget import JobBudget
from runner.engine.client import RunnerRedis
from runner.engine.connection import RedisSettings, blocking_client, create_pool, log_redis_info
from runner.engine.cron import CronScheduler, function_table
from runner.engine.direct import DirectScript
from runner.engine.events import JobCounts, JobEvents, JobLog, JobObserver
from runner.engine.executors import default_processes, default_threads
from runner.engine.executors.dispatch import JobExecutors
from runner.engine.flow import FlowLimits, publish_spec
from runner.engine.functions import Function, Hook, hook_path
from runner.engine.health import HealthReporter, async_check_health, check_health
from runner.engine.job_runner import JobHooks, JobRunner, JobSettings
from runner.engine.keys import ARQ_LAYOUT, CLUSTER_LAYOUT, KeyLayout, check_queue_name
from runner.engine.leases import LeaseKeeper
from runner.engine.lifecycle import REDIS_ERRORS, Lifecycle, Outage, WorkerState
from runner.engine.outcomes import OutcomeWriter
from runner.engine.parts import WorkerParts
from runner.engine.poll import PollLoop, PollSettings
from runner.engine.presence import PresenceFacts
from runner.engine.records import ClaimLosses
from runner.engine.serializers import Deserializer, Serializer
from runner.engine.shards import Lane, ShardRunning, check_flow, plan_lanes, run_polls, shard_count
from runner.engine.utils import SecondsTimedelta, timestamp_ms, to_seconds
from runner.engine.watchdog import LoopWatchdog, RunningJob
from runner.errors import FailedJobs, InvalidArgument

logger = logging.getLogger("runner.worker")

__all__ = ["Worker", "async_check_health", "check_health"]


class Worker:
    """Runs jobs from one queue. The parameters and their defaults are arq's, plus ``lease``, ``observers`` and the
    executors' settings.

    Args:
        functions: job functions (``async def``, or ``def`` run in a thread), ``func(...)`` results (which may set
            ``executor="process"``) or ``"module:attr"`` paths.
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
        observers: ``JobObserver`` objects that get every job event (more with ``subscribe``); the job log
            lines are one such observer, always there.
        threads: threads running ``def`` jobs at once (default ``max_jobs``).
        processes: job subprocesses for ``executor="process"`` functions (default the usable cores, at most
            ``max_jobs``); started only when a function needs them.
        process_startup, process_shutdown: ``hook(ctx)`` (def or async def, or a ``"module:attr"`` path to one) run
            once in each job subprocess; the ctx the startup hook fills is the base of its jobs' ctx.
        max_jobs_per_process, max_memory_per_process: replace a job subprocess after this many jobs, or once its
            resident memory passes this many bytes (None: never).
        loop_stall_threshold: warn when the event loop is blocked this many seconds (None: no watchdog).
        job_budget: shared by the workers of one process that is recycled after a number of jobs.
        global_max_jobs, rate_limit: queue-wide flow control across every worker (docs/flow-control.md): the most
            jobs running at once, and the most started per period (``"100/s"``, ``"600/m"``, ``"5/h"``).
        shards: the queue is split over this many shards (cluster layout; default the count the pool's
            ``RedisSettings.shards`` names, else 1): one lane per shard claims from it with a share of ``max_jobs``
            (runner/engine/shards.py).
        event_loop: the loop ``run()`` starts: "auto" (uvloop when installed, else asyncio's), "asyncio" or "uvloop"
            (runner/engine/loops.py); ``async_run()`` runs on the caller's.
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
        observers: Sequence[JobObserver] = (),
        threads: int | None = None,
        processes: int | None = None,
        process_startup: Callable[..., Any] | str | None = None,
        process_shutdown: Callable[..., Any] | str | None = None,
        max_jobs_per_process: int | None = None,
        max_memory_per_process: int | None = None,
        loop_stall_threshold: SecondsTimedelta | None = 1.0,
        job_budget: JobBudget | None = None,
        global_max_jobs: int | None = None,
        rate_limit: str | None = None,
        shards: int | None = None,
        event_loop: str = "auto",
    ) -> None:
        self.cron_jobs = list(cron_jobs or [])
        self.functions = function_table(functions, self.cron_jobs)
        if max_jobs < 1:
            raise InvalidArgument(f"max_jobs must be at least 1 (got {max_jobs})")
        self.queue_name = _queue_name(queue_name, redis_pool)
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
        layout = _layout(redis_pool, self.redis_settings)
        check_queue_name(layout, self.queue_name)
        known = redis_pool.queue_shards if redis_pool is not None else self.redis_settings.shards
        self.shards = shard_count(shards, self.queue_name, known, layout)
        self.lanes = plan_lanes(layout, self.queue_name, self.shards, max_jobs, health_check_key)
        self.health_check_key = self.lanes[0].health_check_key
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
        self.threads = threads or default_threads(max_jobs)
        self.processes = processes or default_processes(max_jobs)
        self.process_startup = hook_path("process_startup", process_startup)
        self.process_shutdown = hook_path("process_shutdown", process_shutdown)
        self.max_jobs_per_process = max_jobs_per_process
        self.max_memory_per_process = max_memory_per_process
        self.loop_stall_threshold_s = to_seconds(loop_stall_threshold) or None
        self.job_budget = job_budget
        self.event_loop = loops.check_event_loop(event_loop)
        self.queue_flow = FlowLimits.build(concurrency=global_max_jobs, rate_limit=rate_limit, label="queue")
        check_flow(self.shards, self.queue_name, self.queue_flow, self.functions)
        self.counts = JobCounts()
        self.events = JobEvents([self.counts, JobLog(log_results=log_results), *observers])
        self.lifecycle = Lifecycle()
        self.running = self.lanes[0].running if self.shards == 1 else ShardRunning([ln.running for ln in self.lanes])
        self.parts: WorkerParts | None = None  # this run's parts (shard 0's), while it runs
        self.lane_parts: list[WorkerParts] = []  # every lane's, while it runs
        self._main_task: asyncio.Task[None] | None = None  # the task running main(), while it runs
        self._health: list[HealthReporter] = []  # the last run's, whose records close() removes

    # -- what arq's Worker shows ------------------------------------------------------------------------------------

    @property
    def jobs_complete(self) -> int:
        return self.counts.complete

    @property
    def jobs_failed(self) -> int:
        return self.counts.failed

    @property
    def jobs_retried(self) -> int:
        return self.counts.retried

    @property
    def health_check_interval(self) -> float:
        """Seconds between health records (arq's attribute name)."""
        return self.health_check_interval_s

    @property
    def jobs_started(self) -> int:
        """Claimed jobs this worker started (``max_burst_jobs`` limits these)."""
        return self.counts.started

    @property
    def pool(self) -> RunnerRedis:
        if self._pool is None:
            raise RuntimeError("the worker is not connected yet")
        return self._pool

    @property
    def state(self) -> WorkerState:
        return self.lifecycle.state

    def subscribe(self, observer: JobObserver) -> None:
        """Send every job event from now on to ``observer`` as well (``unsubscribe`` ends it)."""
        self.events.subscribe(observer)

    def unsubscribe(self, observer: JobObserver) -> None:
        self.events.unsubscribe(observer)

    # -- running ---------------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Run until stopped (or, with ``burst``, until the queue is empty), then ``close()``."""

        async def run_and_close() -> None:
            try:
                await self.main()
            finally:
                await self.close()

        loops.run(run_and_close(), event_loop=self.event_loop)

    async def run_check(self, retry_jobs: bool | None = None, max_burst_jobs: int | None = None) -> int:
        """Run in burst mode and return the number of jobs completed; like ``async_run`` it leaves ``close()`` to
        the caller.

        Raises:
            FailedJobs: some jobs failed; the exception carries their results.
        """
        if retry_jobs is not None:
            self.retry_jobs = retry_jobs
        if max_burst_jobs is not None:
            self.max_burst_jobs = max_burst_jobs
        self.burst = True
        await self.async_run()
        if self.jobs_failed:
            failed = [r for r in await self.pool.all_job_results() if not r.success]
            raise FailedJobs(self.jobs_failed, failed)
        return self.jobs_complete

    async def async_run(self) -> None:
        """Run in the current event loop until stopped (``main()``); as in arq, ``close()`` is left to the caller."""
        await self.main()

    async def main(self) -> None:
        """Connect (unless given a pool), run ``on_startup``, then take jobs until stopped or, with ``burst``, until
        the queue is empty.

        When it returns, the jobs that ran have their outcomes stored (a stop requeues the ones still running) and
        cron and the lease keeper have stopped. The health record, ``on_shutdown`` and the pool are ``close()``'s,
        as in arq, so a test can look at the pool after a burst.
        """
        self._main_task = asyncio.current_task()
        self.lifecycle.begin()
        loop = asyncio.get_running_loop()
        if self.handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            lanes = await self._startup()
            try:
                self.lifecycle.running()
                await run_polls([lane.poll for lane in lanes])
            finally:
                await self._wind_down(lanes)
        finally:
            self.parts = None
            self.lane_parts = []
            self._main_task = None
            self.lifecycle.stopped()
            if self.handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    def _on_signal(self, signum: int) -> None:
        action = "forcing stop" if self.lifecycle.stopping else "stopping"
        logger.info("received %s, %s", signal.Signals(signum).name, action)
        self.request_stop()

    def request_stop(self) -> None:
        """Stop taking jobs and shut down gracefully; a second call cancels running jobs at once (they are
        requeued)."""
        if self.lifecycle.request_stop() is WorkerState.STOPPING_NOW:
            for record in self.running:
                if record.cancel():
                    logger.debug("cancelled %s on forced stop", record.job_id)

    def handle_sig(self, signum: int) -> None:
        """arq's signal handler, for code that calls it to stop a worker: stop now, requeueing running jobs."""
        logger.info("shutdown on %s", signal.Signals(signum).name)
        self.request_stop()
        self.request_stop()

    def handle_sig_wait_for_completion(self, signum: int) -> None:
        """arq's other signal handler: stop taking jobs and give running ones ``job_completion_wait``."""
        logger.info("shutdown on %s, waiting for running jobs", signal.Signals(signum).name)
        self.request_stop()

    async def close(self) -> None:
        """Stop the worker if it is running (its running jobs are cancelled and requeued, as arq's close() does),
        then delete arq's shared health record, run ``on_shutdown`` and close the pool it opened.

        A pool passed in as ``redis_pool`` stays open: it belongs to its owner (arq closes it, and redis-py reopens
        it on its next command, so code that goes on using it works either way).
        """
        task = self._main_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            self.request_stop()
            self.request_stop()  # a second request: cancel running jobs now instead of waiting for them
            await asyncio.wait({task})
        if self._pool is None:
            return
        for health in self._health:
            with contextlib.suppress(*REDIS_ERRORS):
                await health.clear_shared()
        self._health = []
        pool, self._pool = self._pool, None  # closed once: a second close() has nothing to do, as in arq
        try:
            if self.on_shutdown is not None:
                await self.on_shutdown(self.ctx)
        finally:
            if self._own_pool:
                await pool.aclose()
        self._log_counts("closed")

    async def _startup(self) -> list[WorkerParts]:
        if self._pool is None:
            self._own_pool = True
            self._pool = await create_pool(
                self.redis_settings,
                job_serializer=self.job_serializer,
                job_deserializer=self.job_deserializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        pool = self.pool
        if self.shards > 1:  # cron's enqueues, and those of jobs through ctx["redis"], spread over the shards
            pool.queue_shards.setdefault(self.queue_name, self.shards)
        logger.info(
            "worker %s on %s (event loop: %s): %d functions: %s",
            self.worker_id,
            self.queue_name,
            loops.loop_name(asyncio.get_running_loop()),
            len(self.functions),
            ", ".join(self.functions),
        )
        with contextlib.suppress(*REDIS_ERRORS):
            await log_redis_info(pool, logger.info)
        self.ctx["redis"] = pool
        if self.on_startup is not None:
            await self.on_startup(self.ctx)
        executors = JobExecutors(
            threads=self.threads,
            processes=self.processes,
            process_startup=self.process_startup,
            process_shutdown=self.process_shutdown,
            max_jobs_per_process=self.max_jobs_per_process,
            max_memory_per_process=self.max_memory_per_process,
        )
        await executors.start(self.functions)
        flows = {n: getattr(f, "flow", FlowLimits()) for n, f in self.functions.items()}
        for lane in self.lanes:
            await publish_spec(pool, lane.queue_name, flows, self.queue_flow)
        self._health = []
        lanes = self.lane_parts = [self._wire(pool, executors, lane) for lane in self.lanes]
        parts = self.parts = lanes[0]
        if self.loop_stall_threshold_s is not None:
            LoopWatchdog.for_loop().attach(self, self.loop_stall_threshold_s)
        for lane_parts in lanes:
            lane_parts.background.append(asyncio.create_task(lane_parts.leases.run()))
            lane_parts.background.append(asyncio.create_task(lane_parts.health.run()))
        if self.cron_jobs:
            scheduler = CronScheduler(self.cron_jobs, pool=pool, queue_name=self.queue_name, default_tz=self.timezone)
            # the startup enqueues land before the first claim, so a burst worker runs its run_at_startup jobs
            await scheduler.start()
            parts.cron = asyncio.create_task(scheduler.run())
        return lanes

    def running_jobs(self) -> list[RunningJob]:
        """The jobs running now, for the loop watchdog (called from its thread: it only reads)."""
        now_ms, now = timestamp_ms(), time.monotonic()
        return [
            RunningJob(record.job_id, record.job.function, now - (now_ms - record.start_ms) / 1000, record.task)
            for record in self.running
            if record.job is not None
        ]

    def _wire(self, pool: RunnerRedis, executors: JobExecutors, lane: Lane) -> WorkerParts:
        """Make this run's parts for one lane (the queue, or one shard of it), each handed only what it needs."""
        outage, losses = Outage(self.lifecycle, pool.settings_description), ClaimLosses(self.lease_ms)
        writer = OutcomeWriter(
            script=DirectScript(pool, scripts.FINISH),
            without_results=DirectScript(pool, scripts.FINISH_WITHOUT_RESULTS),
            layout=pool.key_layout,
            queue_name=lane.queue_name,
            lifecycle=self.lifecycle,
            outage=outage,
            losses=losses,
            release=pool.register_script(scripts.FLOW_RELEASE),
        )
        settings = JobSettings(
            queue_name=lane.queue_name,
            job_timeout_s=self.job_timeout_s,
            keep_result_s=self.keep_result_s,
            keep_result_forever=self.keep_result_forever,
            max_tries=self.max_tries,
            retry_jobs=self.retry_jobs,
            lease_s=self.lease_ms / 1000,
            serializer=self.job_serializer,
            deserializer=self.job_deserializer,
        )
        hooks = JobHooks(self.on_job_start, self.on_job_end, self.after_job_end)
        runner = JobRunner(
            settings=settings,
            functions=self.functions,
            ctx=self.ctx,
            pool=pool,
            writer=writer,
            events=self.events,
            hooks=hooks,
            executors=executors,
        )
        leases = self._lease_keeper(pool, writer, outage, losses, lane)
        return WorkerParts(
            writer=writer,
            runner=runner,
            executors=executors,
            poll=self._poll_loop(pool, runner, writer, outage, leases, lane),
            leases=leases,
            health=self._health_reporter(pool, outage, lane),
        )

    def _poll_loop(
        self, pool: RunnerRedis, runner: JobRunner, writer: OutcomeWriter, outage: Outage, keep: LeaseKeeper, lane: Lane
    ) -> PollLoop:
        poll_settings = PollSettings(
            queue_name=lane.queue_name,
            max_jobs=lane.max_jobs,
            queue_read_limit=self.queue_read_limit,
            lease_ms=self.lease_ms,
            poll_delay_s=self.poll_delay_s,
            burst=self.burst,
            max_burst_jobs=self.max_burst_jobs,
            allow_abort_jobs=self.allow_abort_jobs,
            worker_id=self.worker_id,
        )
        return PollLoop(
            settings=poll_settings,
            pool=pool,
            script=DirectScript(pool, scripts.CLAIM),
            running=lane.running,
            runner=runner,
            writer=writer,
            counts=self.counts,
            lifecycle=self.lifecycle,
            outage=outage,
            budget=self.job_budget,
            confirm=keep.heartbeat,
        )

    def _lease_keeper(
        self, pool: RunnerRedis, writer: OutcomeWriter, outage: Outage, losses: ClaimLosses, lane: Lane
    ) -> LeaseKeeper:
        return LeaseKeeper(
            pool=pool,
            client=blocking_client(pool, self.redis_settings if self._own_pool else None),
            queue_name=lane.queue_name,
            running=lane.running,
            writer=writer,
            outage=outage,
            lease_ms=self.lease_ms,
            allow_abort_jobs=self.allow_abort_jobs,
            tick_s=max(min(self.poll_delay_s, 0.5), 0.05),
            losses=losses,
        )

    def _health_reporter(self, pool: RunnerRedis, outage: Outage, lane: Lane) -> HealthReporter:
        health = HealthReporter(
            pool=pool,
            queue_name=lane.queue_name,
            worker_id=self.worker_id,
            health_check_key=lane.health_check_key,
            interval_s=self.health_check_interval_s,
            lease_s=self.lease_ms / 1000,
            counts=self.counts,
            running=lane.running,
            outage=outage,
            timezone=self.timezone,
            presence=PresenceFacts(tuple(self.functions), lane.max_jobs, self.burst),
        )
        self._health.append(health)
        return health

    async def _wind_down(self, lanes: list[WorkerParts]) -> None:
        """The end of ``main()``: running jobs finish (or are requeued on a stop), the background parts stop,
        every outcome is written, and the worker's own health and presence records go (it is not live now)."""
        self.lifecycle.ending()
        running = self.running
        if len(running) and self.job_completion_wait_s > 0 and not self.lifecycle.forced:
            logger.info("waiting up to %gs for %d running jobs", self.job_completion_wait_s, len(running))
            await running.wait(timeout=self.job_completion_wait_s)
        if len(running):
            logger.info("requeueing %d running jobs", len(running))
            running.cancel_all()
            await running.wait(timeout=30)
        if self.loop_stall_threshold_s is not None:
            LoopWatchdog.for_loop().detach(self)
        for parts in lanes:
            await parts.stop_background()
            await parts.writer.close()
        await lanes[0].executors.close()
        for parts in lanes:
            with contextlib.suppress(*REDIS_ERRORS):
                await parts.health.clear_own()  # not running any more; arq's shared record is close()'s
        self._log_counts("stopped")

    def _log_counts(self, event: str) -> None:
        counts = (self.jobs_complete, self.jobs_failed, self.jobs_retried)
        logger.info("worker %s %s: j_complete=%d j_failed=%d j_retried=%d", self.worker_id, event, *counts)

    def __repr__(self) -> str:
        return (
            f"<Worker {self.worker_id} queue={self.queue_name} j_complete={self.jobs_complete} "
            f"j_failed={self.jobs_failed} j_retried={self.jobs_retried} j_ongoing={len(self.running)}>"
        )


def _queue_name(queue_name: str | None, redis_pool: RunnerRedis | None) -> str:
    """arq's rule: without a queue name, the pool's default queue is the worker's."""
    if queue_name is not None:
        return queue_name
    if redis_pool is None:
        raise InvalidArgument("If queue_name is absent, redis_pool must be present.")
    return redis_pool.default_queue_name


def _layout(redis_pool: RunnerRedis | None, settings: RedisSettings) -> KeyLayout:
    """The key layout of the pool the worker is given, or of the one it will open."""
    if redis_pool is not None:
        return redis_pool.key_layout
    return CLUSTER_LAYOUT if settings.cluster else ARQ_LAYOUT
