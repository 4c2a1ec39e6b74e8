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
from runner.engine.keys import ARQ_LAYOUT, KeyLayout
from runner.engine.lifecycle import REDIS_ERRORS
from runner.engine.utils import timestamp_ms

logger = logging.getLogger("runner.worker")


class LeaseThread:
    """Renews the claims of one worker's jobs every ``lease_ms / 3`` from a daemon thread.

    Args:
        client: a blocking ``redis.Redis`` of its own (``connection.blocking_client``).
        queue_name: the queue whose scores move with the claims.
        lease_ms: how long a claim lives without renewal.
        claims_lock: held by the outcome writer while an outcome script is in flight.
        on_lost: called (from the thread) with the ids of running jobs whose claim another worker now holds.
        layout: where the queue and the claims live.
    """

    def __init__(
        self,
        client: Any,
        *,
        queue_name: str,
        lease_ms: int,
        claims_lock: threading.Lock,
        on_lost: Callable[[list[str]], None] | None = None,
        layout: KeyLayout = ARQ_LAYOUT,
        name: str = "runner-lease",
    ) -> None:
        self.client = client
        self.queue_name = queue_name
        self.lease_ms = lease_ms
        self.claims_lock = claims_lock
        self.on_lost = on_lost
        self.queue_key = layout.queue(queue_name)
        self.in_progress_prefix = layout.in_progress_prefix(queue_name)
        self.name = name
        self.interval_s = lease_ms / 3000
        self.renewals = 0
        self.last_renewal: float | None = None  # monotonic time of the last round Redis answered
        self._script = client.register_script(scripts.HEARTBEAT)
        self._held: dict[str, bool] = {}  # job id -> True while it runs, False once its outcome is on its way
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage_since: float | None = None

    # -- what is held (called from the event loop) ------------------------------------------------------------------

    def hold(self, job_id: str) -> None:
        """A claim this worker now holds for a running job."""
        with self._mutex:
            self._held[job_id] = True

    def finishing(self, job_id: str) -> None:
        """The job's outcome is queued: keep its claim alive until it is written, but never take it back."""
        with self._mutex:
            if job_id in self._held:
                self._held[job_id] = False

    def drop(self, job_id: str) -> None:
        """The job is done here; its claim is no longer renewed."""
        with self._mutex:
            self._held.pop(job_id, None)

    def held(self) -> dict[str, bool]:
        with self._mutex:
            return dict(self._held)

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
        """One round: renew every held claim; returns the running jobs whose claim another worker holds."""
        held = self.held()
        if not held:
            return []
        running = [job_id for job_id, is_running in held.items() if is_running]
        finishing = [job_id for job_id, is_running in held.items() if not is_running]
        # re-taking needs the lock; without it every id is only renewed (see the module docstring)
        locked = self.claims_lock.acquire(timeout=min(self.interval_s / 4, 0.5))
        try:
            retake = running if locked else []
            renew_only = finishing if locked else running + finishing
            ids = retake + renew_only
            prefix = self.in_progress_prefix
            lost = self._script(
                keys=[self.queue_key, *[prefix + job_id for job_id in ids]],
                args=[timestamp_ms(), self.lease_ms, len(retake), *ids],
            )
        finally:
            if locked:
                self.claims_lock.release()
        self.renewals += 1
        self.last_renewal = time.monotonic()
        if self._outage_since is not None:
            logger.warning("claims renewed again after %.1fs without Redis", time.monotonic() - self._outage_since)
            self._outage_since = None
        gone = [job_id.decode() if isinstance(job_id, bytes) else str(job_id) for job_id in lost]
        # a job whose outcome landed between the snapshot and the round is not lost, only finished
        current = self.held()
        gone = [job_id for job_id in gone if current.get(job_id)]
        if gone and self.on_lost is not None:
            self.on_lost(gone)
        return gone

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
