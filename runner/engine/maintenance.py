"""Keeping a worker's claims alive and its state visible: heartbeats, aborts, timeouts, health records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, tzinfo
from typing import cast

from redis.commands.core import AsyncScript

from runner.engine import keys
from runner.engine.connection import RedisSettings, create_pool
from runner.engine.execution import REDIS_ERRORS, JobExecution
from runner.engine.utils import timestamp_ms

logger = logging.getLogger("runner.worker")


class Maintenance(JobExecution):
    """The worker's background duties, run by one loop every ``min(poll_delay, 0.5)`` seconds; a base of ``Worker``."""

    allow_abort_jobs: bool
    health_check_interval_s: float
    health_check_key: str
    lease_ms: int
    poll_delay_s: float
    timezone: tzinfo | None
    worker_id: str
    _closing: asyncio.Event
    _heartbeat_script: AsyncScript

    async def _maintenance_loop(self) -> None:
        tick = max(min(self.poll_delay_s, 0.5), 0.05)
        heartbeat_every = self.lease_ms / 3000
        last_heartbeat = last_health = -float("inf")
        while not self._closing.is_set():
            now = time.monotonic()
            self._enforce_timeouts()
            try:
                if self.allow_abort_jobs and self.tasks:
                    await self._cancel_aborted()
                if now - last_heartbeat >= heartbeat_every:
                    await self._heartbeat()
                    last_heartbeat = now
                if now - last_health >= self.health_check_interval_s:
                    await self._record_health()
                    last_health = now
            except REDIS_ERRORS as exc:
                await self._outage(exc)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), tick)

    async def _heartbeat(self) -> None:
        async with self._lock():
            running = [job_id for job_id in self.tasks if job_id not in self._finishing]
            finishing = [job_id for job_id in self.tasks if job_id in self._finishing]
            if not running and not finishing:
                return
            lost = await self._heartbeat_script(
                keys=[self.queue_name],
                args=[timestamp_ms(), self.lease_ms, keys.in_progress_key_prefix, len(running), *running, *finishing],
            )
        for job_id in lost:
            logger.error(
                "job %s lost its claim while it ran here (this worker stalled longer than the lease of %gs, and "
                "another worker took the job over or it was removed); it may run twice",
                job_id.decode(),
                self.lease_ms / 1000,
            )

    async def _cancel_aborted(self) -> None:
        running = list(self.tasks)
        scores = await self.pool.zmscore(keys.abort_jobs_ss, running)
        stale = []
        for job_id, score in zip(running, scores, strict=True):
            if score is None:
                continue
            if score < self._enqueued_ms.get(job_id, 0):
                stale.append(job_id)  # asked before this job was enqueued: meant for an earlier job (arq #485)
                continue
            task = self.tasks.get(job_id)
            if task is not None and not task.done():
                # cancelled again on every tick until it ends: on Python 3.11 a cancel can be lost inside a
                # redis-py call that has a socket timeout; the abort entry goes when the job's outcome is written
                self._aborting.add(job_id)
                task.cancel()
        if stale:
            await self.pool.zrem(keys.abort_jobs_ss, *stale)

    def _enforce_timeouts(self) -> None:
        """Cancel jobs still running well past their timeout (their own timeout's cancel was lost)."""
        now = asyncio.get_running_loop().time()
        for job_id, deadline in list(self._deadlines.items()):
            task = self.tasks.get(job_id)
            if task is not None and not task.done() and now > deadline + 0.5 and job_id not in self._aborting:
                self._timed_out.add(job_id)
                task.cancel()

    def health_line(self, queued: int) -> str:
        now = datetime.now(tz=self.timezone or UTC)
        return (
            f"{now:%b-%d %H:%M:%S} j_complete={self.jobs_complete} j_failed={self.jobs_failed} "
            f"j_retried={self.jobs_retried} j_ongoing={len(self.tasks)} queued={queued}"
        )

    async def _record_health(self) -> None:
        queued = await self.pool.zcard(self.queue_name)
        line = self.health_line(queued)
        ttl_ms = int((self.health_check_interval_s + 1) * 1000)
        async with self.pool.pipeline(transaction=False) as pipe:
            pipe.set(self.health_check_key, line.encode(), px=ttl_ms)
            # each worker also keeps its own record, so several workers on a queue don't hide each other
            pipe.set(keys.worker_key(self.queue_name, self.worker_id), line.encode(), px=ttl_ms)
            await pipe.execute()

    async def _clear_health(self) -> None:
        """On a clean stop: this worker is no longer live, so `runner check` must not count it for an interval.

        The shared arq key goes too, as arq's own worker does on close; a live peer writes it again.
        """
        await self.pool.delete(self.health_check_key, keys.worker_key(self.queue_name, self.worker_id))


async def async_check_health(
    redis_settings: RedisSettings | None = None,
    health_check_key: str | None = None,
    queue_name: str | None = None,
) -> int:
    """arq's health check: 0 when the queue's health record exists (a worker reported within its interval), else 1."""
    pool = await create_pool(redis_settings)
    try:
        key = health_check_key or keys.health_check_key(queue_name or keys.default_queue_name)
        data = cast(bytes | None, await pool.get(key))
    finally:
        await pool.aclose()
    if not data:
        logger.warning("health check failed: no health record found at %s", key)
        return 1
    logger.info("health check ok: %s", data.decode())
    return 0


def check_health(
    redis_settings: RedisSettings | None = None, health_check_key: str | None = None, queue_name: str | None = None
) -> int:
    """``async_check_health`` for synchronous callers."""
    return asyncio.run(async_check_health(redis_settings, health_check_key, queue_name))
