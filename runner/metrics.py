"""Prometheus metrics for ``runner start --metrics-port PORT`` (needs the ``metrics`` extra: prometheus-client).

Job counts and durations come from the worker's job events: ``JobMetrics`` is a ``JobObserver``
(runner/engine/events.py) that each worker is subscribed to, so the counts do not depend on the log level.
Queue gauges (depth, oldest wait, jobs in progress across all
workers) are read from Redis every ``refresh_s`` seconds by a task in the workers' event loop.

Metrics:
    runner_jobs_started_total{queue,function}
    runner_jobs_completed_total{queue,function}
    runner_jobs_failed_total{queue,function}       failed, timed out or aborted
    runner_jobs_retried_total{queue,function}      asked for a retry, or requeued by a stop
    runner_job_duration_seconds{queue,function}    histogram of finished runs (complete or failed)
    runner_queue_jobs{queue,state}                 state = queued | deferred
    runner_queue_oldest_age_seconds{queue}         how long the longest-waiting due job has waited (0: none)
    runner_jobs_in_progress{queue}                 jobs held by any worker of the queue
    runner_flow_limit{queue,scope,kind}            each flow-control limit (kind = concurrency | rate_limit: the
                                                   count per period); scope = queue, a function, or a group
    runner_flow_in_use{queue,scope,kind}           its use: jobs running, or starts in the current period
    runner_loop_stalls_total{function}             times the event loop was blocked past the watchdog's threshold,
                                                   by the function of the job that blocked it ("" for none)
    runner_loop_stall_seconds                      histogram of how long each stall held the loop
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import Any

from runner._dist import install_hint
from runner.engine.connection import RedisSettings, create_pool
from runner.engine.events import JobEvent, JobEventKind
from runner.engine.inspection import queue_stats
from runner.engine.watchdog import LoopWatchdog, Stall
from runner.engine.worker import Worker
from runner.errors import RunnerError

logger = logging.getLogger("runner.metrics")

INSTALL_HINT = f"Metrics need prometheus-client; install it with: {install_hint('metrics', 'prometheus-client')}."


def available() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


class JobMetrics:
    """The metric objects, registered in ``registry`` (a fresh one by default, so tests stay independent)."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        labels = ["queue", "function"]
        self.started = Counter("runner_jobs_started", "Jobs started.", labels, registry=self.registry)
        self.completed = Counter("runner_jobs_completed", "Jobs completed.", labels, registry=self.registry)
        self.failed = Counter("runner_jobs_failed", "Jobs failed, timed out, aborted.", labels, registry=self.registry)
        self.retried = Counter(
            "runner_jobs_retried",
            "Jobs that asked for a retry or were requeued by a stop.",
            labels,
            registry=self.registry,
        )
        self.duration = Histogram(
            "runner_job_duration_seconds", "Run time of finished jobs.", labels, registry=self.registry
        )
        self.queue_jobs = Gauge(
            "runner_queue_jobs", "Jobs waiting in the queue, by state.", ["queue", "state"], registry=self.registry
        )
        self.oldest_age = Gauge(
            "runner_queue_oldest_age_seconds",
            "Wait of the longest-waiting due job (0 when none).",
            ["queue"],
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "runner_jobs_in_progress", "Jobs held by a worker of the queue.", ["queue"], registry=self.registry
        )
        flow_labels = ["queue", "scope", "kind"]
        self.flow_limit = Gauge(
            "runner_flow_limit", "A flow-control limit (rate: its count).", flow_labels, registry=self.registry
        )
        self.flow_in_use = Gauge(
            "runner_flow_in_use", "A flow-control limit's use now.", flow_labels, registry=self.registry
        )
        self.stalls = Counter(
            "runner_loop_stalls",
            "Times the event loop was blocked past the watchdog's threshold, by the blocking job's function.",
            ["function"],
            registry=self.registry,
        )
        self.stall_seconds = Histogram(
            "runner_loop_stall_seconds",
            "How long each stall held the event loop.",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )

    def loop_stall(self, stall: Stall) -> None:
        """Count one stall of the event loop (a ``LoopWatchdog`` observer)."""
        self.stalls.labels(stall.blocking.function if stall.blocking is not None else "").inc()
        self.stall_seconds.observe(stall.duration_s)

    def job_event(self, event: JobEvent) -> None:
        """Count one job event (the ``JobObserver`` interface)."""
        labels = (event.queue, event.function)
        kind = event.kind
        if kind is JobEventKind.STARTED:
            self.started.labels(*labels).inc()
            return
        if kind is JobEventKind.COMPLETE:
            self.completed.labels(*labels).inc()
        elif kind in (JobEventKind.FAILED, JobEventKind.ABORTED):
            self.failed.labels(*labels).inc()
        else:  # retried or requeued: the run did not finish, so it has no duration to observe
            self.retried.labels(*labels).inc()
            return
        if event.duration_s is not None:
            self.duration.labels(*labels).observe(event.duration_s)

    async def refresh_queues(self, pool: Any, queues: Sequence[str]) -> None:
        for queue in queues:
            stats = await queue_stats(pool, queue)
            self.queue_jobs.labels(queue, "queued").set(stats.queued)
            self.queue_jobs.labels(queue, "deferred").set(stats.deferred)
            self.in_progress.labels(queue).set(stats.in_progress)
            self.oldest_age.labels(queue).set(stats.oldest_queued_age_s or 0)
            for use in stats.limits:
                limit = float(use.limit.split("/")[0])
                self.flow_limit.labels(queue, use.scope, use.kind).set(limit)
                self.flow_in_use.labels(queue, use.scope, use.kind).set(use.used)


class MetricsExporter:
    """Serves ``/metrics`` on ``port`` and keeps the queue gauges fresh while the workers run."""

    def __init__(
        self,
        port: int,
        workers: Sequence[Worker],
        redis_settings: RedisSettings,
        *,
        host: str = "127.0.0.1",
        refresh_s: float = 5.0,
    ) -> None:
        self.port = port
        self.host = host
        self.workers = list(workers)
        self.queues = [worker.queue_name for worker in self.workers]
        self.redis_settings = redis_settings
        self.refresh_s = refresh_s
        self.metrics = JobMetrics()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, subscribe to the workers' job events and start refreshing the gauges.

        Raises:
            RunnerError: the port cannot be listened on.
        """
        from prometheus_client import start_http_server

        try:
            self._server, self._thread = start_http_server(self.port, addr=self.host, registry=self.metrics.registry)
        except OSError as exc:
            raise RunnerError(
                f"Could not serve metrics on {self.host} port {self.port}: {exc.strerror or exc}; "
                "choose another --metrics-port or --metrics-host."
            ) from exc
        for worker in self.workers:
            worker.subscribe(self.metrics)
        LoopWatchdog.for_loop().subscribe(self.metrics.loop_stall)
        self._task = asyncio.create_task(self._refresh_loop())
        logger.info("metrics at http://%s:%d/metrics", self.host, self.port)

    async def _refresh_loop(self) -> None:
        pool = None
        try:
            while True:
                try:
                    if pool is None:
                        pool = await create_pool(self.redis_settings)
                    await self.metrics.refresh_queues(pool, self.queues)
                except Exception as exc:  # Redis away: the workers report the outage; keep the last values
                    logger.debug("metrics refresh failed: %r", exc)
                await asyncio.sleep(self.refresh_s)
        finally:
            if pool is not None:
                with contextlib.suppress(Exception):
                    await pool.aclose()

    async def stop(self) -> None:
        for worker in self.workers:
            worker.unsubscribe(self.metrics)
        LoopWatchdog.for_loop().unsubscribe(self.metrics.loop_stall)
        if self._task is not None:
            # on Python 3.11 a cancel can be lost inside a redis-py call that has a socket timeout, and the loop
            # would then run on for ever: cancel until it has ended
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
