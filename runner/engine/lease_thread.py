"""Claims renewed from a thread with its own connection, so a job that blocks the event loop cannot lose them.

A claim lives ``lease`` ms unless renewed. Renewing it from the event loop, as 0.1 did, fails exactly when it is
needed: a job that calls ``time.sleep`` or crunches numbers on the loop stops every coroutine, the heartbeat too,
and after a lease another worker runs the job a second time. This thread renews every ``lease / 3`` whatever the
loop does, and stops when its process does, so a dead worker's jobs still come back within the lease.

The thread and the outcome writer share ``claims_lock``. A running job whose claim key vanished (the whole process
was frozen past the lease) is taken back only while the lock is held, so a heartbeat can never re-take a claim that
an outcome write (a retry, a requeue) has just let go. Renewing alone is safe at any time: it only extends keys that
exist. When the loop holds the lock and is itself blocked, the thread renews without re-taking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from runner.engine import scripts
from runner.engine.lifecycle import REDIS_ERRORS
from runner.engine.protocol import ClaimLoss, parse_losses

logger = logging.getLogger("runner.worker")


Claims = tuple[list[str], list[str]]  # (running job ids, ids whose outcome is on its way)
Request = Callable[[list[str], list[str]], tuple[list[str], list[Any]]]


class LeaseThread:
    """Renews the claims of one worker's jobs every ``lease_ms / 3`` from a daemon thread.

    Args:
        client: a blocking ``redis.Redis`` of its own (``connection.blocking_client``).
        claims: what to renew now, ``(running, finishing)``; called from the thread, so it only reads.
        request: ``(retake, renew_only) -> (keys, args)`` of one ``heartbeat.lua`` call.
        lease_ms: how long a claim lives without renewal.
        claims_lock: held by the outcome writer while an outcome script is in flight.
        on_lost: called (from the thread) with ``(id, ClaimLoss)`` of the running jobs whose claim could not be
            kept: another worker holds it, or the job left the queue.
    """

    def __init__(
        self,
        client: Any,
        *,
        claims: Callable[[], Claims],
        request: Request,
        lease_ms: int,
        claims_lock: threading.Lock,
        on_lost: Callable[[list[tuple[str, ClaimLoss]]], None] | None = None,
        name: str = "runner-lease",
    ) -> None:
        self.client = client
        self.claims = claims
        self.request = request
        self.lease_ms = lease_ms
        self.claims_lock = claims_lock
        self.on_lost = on_lost
        self.name = name
        self.interval_s = lease_ms / 3000
        self.renewals = 0
        self.last_renewal: float | None = None  # monotonic time of the last round Redis answered
        self._script = client.register_script(scripts.HEARTBEAT)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage_since: float | None = None

    # -- the thread -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the thread (after the round in flight, if any) and close its connection."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        try:
            self.client.close()
        except REDIS_ERRORS:
            pass

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.renew()
            except REDIS_ERRORS as exc:
                self._outage(exc)
            except Exception:  # a bug here must not end the thread silently: the claims depend on it
                logger.exception("renewing claims failed")

    def renew(self) -> list[str]:
        """One round: renew every claim; returns the running jobs whose claim could not be kept."""
        running, finishing = self.claims()
        if not running and not finishing:
            return []
        # re-taking needs the lock; without it every id is only renewed (see the module docstring)
        locked = self.claims_lock.acquire(timeout=min(self.interval_s / 4, 0.5))
        try:
            retake = running if locked else []
            renew_only = finishing if locked else running + finishing
            script_keys, args = self.request(retake, renew_only)
            lost = self._script(keys=script_keys, args=args)
        finally:
            if locked:
                self.claims_lock.release()
        self.renewals += 1
        self.last_renewal = time.monotonic()
        if self._outage_since is not None:
            logger.warning("claims renewed again after %.1fs without Redis", time.monotonic() - self._outage_since)
            self._outage_since = None
        # a job whose outcome got on its way between the look and the round is not lost, only finishing (and the
        # outcome writer hears of a claim taken from it)
        still_running = set(self.claims()[0])
        gone = [(job_id, loss) for job_id, loss in parse_losses(lost) if job_id in still_running]
        if gone and self.on_lost is not None:
            self.on_lost(gone)
        return [job_id for job_id, _ in gone]

    def _outage(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            logger.warning(
                "cannot renew claims (%s: %s); they lapse %gs after the last renewal unless Redis is back",
                type(exc).__name__,
                exc,
                self.lease_ms / 1000,
            )
