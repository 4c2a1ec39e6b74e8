"""A worker's lifecycle as one state, and the outage policy every part shares while Redis is away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from enum import Enum
from typing import Any

from redis.exceptions import OutOfMemoryError, RedisError

logger = logging.getLogger("runner.worker")

# what a Redis call raises when the server is away, slow or refusing: the worker waits these out
REDIS_ERRORS = (RedisError, OSError)


class WorkerState(Enum):
    """Where a worker is in its life; it moves forward only, and a new run starts again at ``STARTING``.

    ``ENDING``: the run ends by itself (a burst found its queue empty); a stop request now is a first one.
    ``STOPPING``: a stop was requested: no more claims; running jobs get ``job_completion_wait``, then are
    cancelled and requeued.
    ``STOPPING_NOW``: a second stop request; running jobs are cancelled at once and an outcome write that fails
    is given up (its job runs again).
    """

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    ENDING = "ending"
    STOPPING = "stopping"
    STOPPING_NOW = "stopping now"
    STOPPED = "stopped"


_NOT_TAKING = frozenset({WorkerState.ENDING, WorkerState.STOPPING, WorkerState.STOPPING_NOW, WorkerState.STOPPED})


class Lifecycle:
    """The worker's state, and an event that is set once a stop begins, for the parts that wait on it."""

    def __init__(self) -> None:
        self.state = WorkerState.NEW
        self._stop_event: asyncio.Event | None = None
        self._stop_waiters: set[asyncio.Future[None]] = set()

    def begin(self) -> None:
        """A run starts: a stop requested before it is forgotten, as arq does."""
        self.state = WorkerState.STARTING
        self._stop_event = asyncio.Event()  # made per run: an event belongs to the loop that first waits on it

    def running(self) -> None:
        if self.state is WorkerState.STARTING:
            self.state = WorkerState.RUNNING

    def request_stop(self) -> WorkerState:
        """Move to ``STOPPING``, or to ``STOPPING_NOW`` when a stop is already under way; the new state."""
        if self.state in (WorkerState.STOPPING, WorkerState.STOPPING_NOW):
            self.state = WorkerState.STOPPING_NOW
        elif self.state is not WorkerState.STOPPED:
            self.state = WorkerState.STOPPING
        if self._stop_event is not None:
            self._stop_event.set()
        for waiter in self._stop_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._stop_waiters.clear()
        return self.state

    def wake_on_stop(self, waiter: asyncio.Future[None]) -> None:
        """Resolve ``waiter`` once a stop is requested (``forget`` it when done waiting): what ``wait_any`` does,
        without a task per wait, for the poll loop's wait for a free slot, which comes every few jobs."""
        if self._stop_event is not None and self._stop_event.is_set():
            if not waiter.done():
                waiter.set_result(None)
            return
        self._stop_waiters.add(waiter)

    def forget(self, waiter: asyncio.Future[None]) -> None:
        self._stop_waiters.discard(waiter)

    def ending(self) -> None:
        """The run ends by itself: no more claims, but no stop was requested."""
        if self.state in (WorkerState.STARTING, WorkerState.RUNNING):
            self.state = WorkerState.ENDING

    def stopped(self) -> None:
        self.state = WorkerState.STOPPED

    @property
    def stopping(self) -> bool:
        """No more jobs are taken (a stop was asked, or the run is ending)."""
        return self.state in _NOT_TAKING

    @property
    def forced(self) -> bool:
        return self.state is WorkerState.STOPPING_NOW

    async def wait_for_stop(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until a stop begins, at most ``timeout`` seconds; True when it did."""
        if self._stop_event is None:
            if timeout is not None:
                await asyncio.sleep(timeout)
            return self.stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), timeout)
        return self._stop_event.is_set()

    async def wait_any(self, awaitable: Awaitable[Any], timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait for ``awaitable``, a stop, or the timeout, whichever comes first (the others are cancelled)."""
        first = asyncio.ensure_future(awaitable)
        waiters: set[asyncio.Future[Any]] = {first}
        if self._stop_event is not None:
            waiters.add(asyncio.ensure_future(self._stop_event.wait()))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in waiters:
                if not fut.done():
                    fut.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)


class Outage:
    """How every part behaves when a Redis call fails: log the outage once, back off, log the recovery.

    A failure within ``SETTLE_S`` of a recovery continues that outage, silently: during a failover a call may get
    through before the servers have settled (a replica being promoted, a cluster's slot map reloaded).

    Args:
        lifecycle: a stop cuts a backoff short.
        where: the server, as the log line names it.
    """

    SETTLE_S = 5.0  # a failure this soon after a recovery continues the outage before it

    def __init__(self, lifecycle: Lifecycle, where: str) -> None:
        self.lifecycle = lifecycle
        self.where = where
        self.since: float | None = None
        self._recovered_at = -1e9  # when the last outage ended (monotonic)
        self._resumed = False  # this outage is the last one going on after a call got through
        self.memory_full_since: float | None = None  # Redis refuses writes that need memory (maxmemory)
        self.without_results = 0  # jobs finished without their result while it was full

    async def failed(self, exc: BaseException) -> None:
        """Called on every failed Redis call until one succeeds: log once, then wait a growing pause.

        A Redis that answers "out of memory" is no outage: it is said as what it is, once (``out_of_memory``).
        """
        if isinstance(exc, OutOfMemoryError):
            self.out_of_memory(exc)
            await self.lifecycle.wait_for_stop(1.0)
            return
        now = time.monotonic()
        if self.since is None and now - self._recovered_at < self.SETTLE_S:
            # a call got through while the servers settled (a failover: a promoted replica, a reloaded slot map):
            # the same outage, already said
            self.since, self._resumed = self._recovered_at, True
        if self.since is None:
            self.since = now
            logger.warning(
                "redis unreachable at %s (%s: %s); retrying until it is back", self.where, type(exc).__name__, exc
            )
        delay = min(0.1 * 2 ** min(int(now - self.since), 6), 2.0)
        if not self.lifecycle.stopping:
            await self.lifecycle.wait_for_stop(delay)
        else:
            await asyncio.sleep(delay)

    def out_of_memory(self, exc: BaseException) -> None:
        """Redis refused a write for want of memory: say so once, until it has room again."""
        if self.memory_full_since is None:
            self.memory_full_since = time.monotonic()
            logger.warning(
                "redis at %s is out of memory (%s: %s): it refuses writes that need memory, so the worker keeps "
                "finishing jobs but their results are not stored until it has room again; raise maxmemory, or "
                "free memory (results kept too long? keep_result)",
                self.where,
                type(exc).__name__,
                exc,
            )

    def memory_recovered(self) -> None:
        """A write that needs memory went through again."""
        if self.memory_full_since is not None:
            logger.warning(
                "redis at %s has room again after %.1fs: results are stored again (%d jobs finished without theirs)",
                self.where,
                time.monotonic() - self.memory_full_since,
                self.without_results,
            )
            self.memory_full_since = None
            self.without_results = 0

    def recovered(self) -> None:
        if self.since is not None:
            if not self._resumed:
                logger.warning("redis reachable again after %.1fs", time.monotonic() - self.since)
            self.since, self._resumed = None, False
            self._recovered_at = time.monotonic()
