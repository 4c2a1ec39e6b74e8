"""The health reporter: a worker's status line, where arq and ``runner check`` look.

Two records carry the same line: arq's shared ``<queue>:health-check`` key, written every
``health_check_interval`` as arq does, and the worker's own ``runner:workers:<queue>:<id>``, so several workers on
one queue don't hide each other. The own record is renewed far more often (every half lease, at most every
interval) and lives two periods and a second, so a worker killed with ``kill -9`` drops out of ``runner check``
within about a lease instead of an hour; it costs one write per period. Between them, every
``PRESENCE_INTERVAL_S``, it writes the worker's presence record for the dashboard (see presence.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, tzinfo
from typing import cast

from runner.engine import keys
from runner.engine.client import RunnerRedis
from runner.engine.connection import RedisSettings, create_pool
from runner.engine.events import JobCounts
from runner.engine.lifecycle import REDIS_ERRORS, Outage
from runner.engine.presence import PRESENCE_INTERVAL_S, PresenceFacts, clear_presence, make_presence, write_presence
from runner.engine.records import RunningJobs
from runner.engine.utils import timestamp_ms

logger = logging.getLogger("runner.worker")


def own_record_period_s(interval_s: float, lease_s: float) -> float:
    """How often a worker renews its own health record: every half lease, or every interval if that is sooner."""
    return min(interval_s, lease_s / 2)


def own_record_ttl_s(interval_s: float, lease_s: float) -> float:
    """How long a worker's own record outlives its last renewal: two periods (one renewal may fail) and a second."""
    return 2 * own_record_period_s(interval_s, lease_s) + 1


class HealthReporter:
    """Writes the health records on a schedule and removes them on a clean stop.

    Args:
        pool: the worker's Redis client.
        queue_name: the worker's queue.
        worker_id: the worker's id, for its own record.
        health_check_key: arq's shared key.
        interval_s: seconds between arq's shared records (each lives one second longer).
        lease_s: the worker's lease; its own record is renewed every half lease (see own_record_period_s).
        counts: the worker's totals.
        running: the worker's running jobs.
        outage: the worker's outage policy.
        timezone: the zone of the line's timestamp (default: local time, as arq).
        presence: what the presence record says besides counts and running jobs; None writes none.
    """

    def __init__(
        self,
        *,
        pool: RunnerRedis,
        queue_name: str,
        worker_id: str,
        health_check_key: str,
        interval_s: float,
        lease_s: float,
        counts: JobCounts,
        running: RunningJobs,
        outage: Outage,
        timezone: tzinfo | None = None,
        presence: PresenceFacts | None = None,
    ) -> None:
        self.pool = pool
        self.queue_name = queue_name
        self.worker_id = worker_id
        self.health_check_key = health_check_key
        self.interval_s = interval_s
        self.own_period_s = own_record_period_s(interval_s, lease_s)
        self.own_ttl_ms = int(own_record_ttl_s(interval_s, lease_s) * 1000)
        self.counts = counts
        self.running = running
        self.outage = outage
        self.timezone = timezone
        self.presence = presence
        self._closing = asyncio.Event()
        self._started_ms = timestamp_ms()

    async def run(self) -> None:
        """Record now and every interval (the own record every period, presence every few seconds) until closed."""
        self._started_ms = timestamp_ms()
        next_health = next_own = next_presence = time.monotonic()
        while not self._closing.is_set():
            try:
                if time.monotonic() >= next_health:
                    await self.record()
                    next_health = time.monotonic() + self.interval_s
                    next_own = time.monotonic() + self.own_period_s
                elif time.monotonic() >= next_own:
                    await self.record(shared=False)
                    next_own = time.monotonic() + self.own_period_s
                if self.presence is not None and time.monotonic() >= next_presence:
                    await self.record_presence()
                    next_presence = time.monotonic() + PRESENCE_INTERVAL_S
            except REDIS_ERRORS as exc:
                await self.outage.failed(exc)
                continue
            wake = (
                min(next_health, next_own, next_presence) if self.presence is not None else min(next_health, next_own)
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), max(wake - time.monotonic(), 0.01))

    def close(self) -> None:
        """Ask the loop to end; it is never cancelled, so no Redis call is cut off halfway."""
        self._closing.set()

    def line(self, queued: int) -> str:
        """arq's health line: ``Mar-01 12:00:00 j_complete=N j_failed=N j_retried=N j_ongoing=N queued=N``, on the
        worker's ``timezone`` clock, else local time as arq writes it."""
        now = datetime.now(tz=self.timezone)
        counts = self.counts
        return (
            f"{now:%b-%d %H:%M:%S} j_complete={counts.complete} j_failed={counts.failed} "
            f"j_retried={counts.retried} j_ongoing={len(self.running)} queued={queued}"
        )

    async def record(self, *, shared: bool = True) -> None:
        """Write the worker's own record and, unless ``shared`` is False, arq's shared key."""
        queued = await self.pool.zcard(self.pool.key_layout.queue(self.queue_name))
        line = self.line(queued).encode()
        async with self.pool.pipeline(transaction=False) as pipe:
            if shared:
                shared_ms = int((self.interval_s + 1) * 1000)
                pipe.set(self.health_check_key, line, px=shared_ms)
                # arq's key lives an interval; this says it is ours, so `runner check` can tell when its writer died
                pipe.set(self.pool.key_layout.health_writer(self.queue_name), line, px=shared_ms)
            pipe.set(self.pool.key_layout.worker(self.queue_name, self.worker_id), line, px=self.own_ttl_ms)
            await pipe.execute()

    async def record_presence(self) -> None:
        assert self.presence is not None
        counts = self.counts
        record = make_presence(
            worker_id=self.worker_id,
            queue=self.queue_name,
            started_ms=self._started_ms,
            facts=self.presence,
            counts=(counts.complete, counts.failed, counts.retried),
            running_ids=self.running.ids(),
        )
        await write_presence(self.pool, record)

    async def clear_own(self) -> None:
        """When a run ends: this worker is no longer live, so `runner check` and the dashboard must not count it
        for an interval. Its own record and its presence go; arq's shared key is ``clear_shared``'s."""
        await self.pool.delete(self.pool.key_layout.worker(self.queue_name, self.worker_id))
        if self.presence is not None:
            await clear_presence(self.pool, self.queue_name, self.worker_id)

    async def clear_shared(self) -> None:
        """On ``close()``: the shared arq key goes, as arq's own worker removes it in its close(), with the note of
        what runner wrote there; a live peer writes them again."""
        await self.pool.delete(self.health_check_key, self.pool.key_layout.health_writer(self.queue_name))


async def async_check_health(
    redis_settings: RedisSettings | None = None,
    health_check_key: str | None = None,
    queue_name: str | None = None,
) -> int:
    """arq's health check: 0 when the queue's health record exists (a worker reported within its interval), else 1."""
    pool = await create_pool(redis_settings)
    try:
        key = health_check_key or pool.key_layout.health_check(queue_name or keys.default_queue_name)
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
