"""Noticing a blocked event loop, and saying what blocked it.

A job that calls ``time.sleep``, a sync driver or a long pure-Python loop on the event loop freezes every other job
on it; queue depth climbs while CPU stays low, and nothing in the log says why. The watchdog is one per event loop,
shared by the workers on it:

- on the loop, a callback every ``threshold / 4`` measures how late it ran (the loop's lag);
- a daemon thread checks every ``threshold / 10`` how long ago that callback last ran; past the threshold it takes
  the stack of the loop's thread (``sys._current_frames``) and the job whose task is running there.

When the loop is free again, one warning per stall names the blocking job and its function, how long the loop was
held, the other jobs that waited, and the blocking frame's stack. A stall still going after ``long_stall_s`` is
reported then (it may never end), and its end only gets an info line. Observers (Prometheus metrics) get a
``Stall`` for every stall.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from runner.text import plural

logger = logging.getLogger("runner.watchdog")

STACK_LIMIT = 12  # innermost frames shown: the blocking call and what led to it


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job on the loop as the watchdog reports it."""

    job_id: str
    function: str
    started: float  # time.monotonic() when it started
    task: asyncio.Task[None] | None = None

    def label(self, now: float) -> str:
        return f"{self.job_id}:{self.function} ({now - self.started:.1f}s)"


class JobSource(Protocol):
    """What a worker tells the watchdog: the jobs running on its loop (called from the watchdog's thread)."""

    def running_jobs(self) -> Sequence[RunningJob]: ...


@dataclass(frozen=True, slots=True)
class Stall:
    """One stall of the loop."""

    duration_s: float
    blocking: RunningJob | None  # the job whose task held the loop, when it was one
    running: list[RunningJob] = field(default_factory=list)
    stack: str = ""


@dataclass
class _Sighting:
    """What the thread saw during the current stall."""

    since_beat: float
    blocking: RunningJob | None
    running: list[RunningJob]
    stack: str
    reported: bool = False


class LoopWatchdog:
    """The watchdog of one event loop; ``for_loop`` gives the shared one, ``attach`` starts it."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWatchdog] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop, threshold_s: float = 1.0, long_stall_s: float = 30.0) -> None:
        self.loop = loop
        self.threshold_s = threshold_s
        self.long_stall_s = long_stall_s
        self.stalls = 0
        self._sources: list[JobSource] = []
        self._observers: list[Callable[[Stall], None]] = []
        self._lock = threading.Lock()
        self._last_beat = time.monotonic()
        self._sighting: _Sighting | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop_thread_id: int | None = None

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop | None = None) -> LoopWatchdog:
        """The watchdog of ``loop`` (default the running one), made on first use and not started until attached."""
        loop = loop or asyncio.get_running_loop()
        watchdog = cls._by_loop.get(loop)
        if watchdog is None:
            watchdog = cls._by_loop[loop] = cls(loop)
        return watchdog

    @property
    def tick_s(self) -> float:
        return max(self.threshold_s / 4, 0.01)

    # -- who listens, who reports -----------------------------------------------------------------------------------

    def subscribe(self, observer: Callable[[Stall], None]) -> None:
        """Call ``observer(stall)`` on the loop after every stall."""
        self._observers.append(observer)

    def unsubscribe(self, observer: Callable[[Stall], None]) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def attach(self, source: JobSource, threshold_s: float | None = None) -> None:
        """Report ``source``'s jobs; the first source starts the watchdog (call from the loop's thread).

        The smallest threshold asked for wins, since several workers share one loop.
        """
        if threshold_s is not None:
            self.threshold_s = threshold_s if not self._sources else min(self.threshold_s, threshold_s)
        self._sources.append(source)
        if len(self._sources) == 1:
            self._start()

    def detach(self, source: JobSource) -> None:
        """Stop reporting ``source``; the last one stops the watchdog."""
        if source in self._sources:
            self._sources.remove(source)
        if not self._sources:
            self._halt()

    # -- the loop side ----------------------------------------------------------------------------------------------

    def _start(self) -> None:
        self._loop_thread_id = threading.get_ident()
        self._last_beat = time.monotonic()
        self._handle = self.loop.call_later(self.tick_s, self._beat, self._last_beat + self.tick_s)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="runner-watchdog", daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None

    def _beat(self, due: float) -> None:
        now = time.monotonic()
        lag = now - due
        with self._lock:
            self._last_beat = now
            sighting, self._sighting = self._sighting, None
        self._handle = self.loop.call_later(self.tick_s, self._beat, now + self.tick_s)
        if lag >= self.threshold_s:
            self._stalled(lag, sighting)

    def _stalled(self, duration_s: float, sighting: _Sighting | None) -> None:
        self.stalls += 1
        stall = Stall(
            duration_s,
            sighting.blocking if sighting else None,
            sighting.running if sighting else [],
            sighting.stack if sighting else "",
        )
        if sighting is not None and sighting.reported:
            logger.info("event loop free again after %.1fs (blocked by %s)", duration_s, _who(stall.blocking))
        else:
            logger.warning(_message(stall, still=False), extra={"stall_s": duration_s})
        for observer in list(self._observers):
            try:
                observer(stall)
            except Exception:
                logger.exception("a loop stall observer failed")

    # -- the thread side --------------------------------------------------------------------------------------------

    def _watch(self) -> None:
        interval = max(self.threshold_s / 10, 0.005)
        while not self._stop.wait(interval):
            with self._lock:
                since = self._last_beat
                sighting = self._sighting
            held = time.monotonic() - since
            if held < self.threshold_s + self.tick_s:
                continue
            if sighting is None or sighting.since_beat != since:
                sighting = self._look(since)
                with self._lock:
                    if self._last_beat == since:  # still the same stall
                        self._sighting = sighting
            if not sighting.reported and held >= self.long_stall_s:
                sighting.reported = True
                stall = Stall(held, sighting.blocking, sighting.running, sighting.stack)
                logger.warning(_message(stall, still=True), extra={"stall_s": held})

    def _look(self, since: float) -> _Sighting:
        """The loop thread's stack and its running task's job, taken while the loop is blocked."""
        frame = sys._current_frames().get(self._loop_thread_id or 0)
        stack = "".join(traceback.format_stack(frame, limit=STACK_LIMIT)) if frame is not None else ""
        try:
            current = asyncio.current_task(self.loop)
        except RuntimeError:
            current = None
        running: list[RunningJob] = []
        for source in list(self._sources):
            for _ in range(3):  # the loop thread may be changing the registry under us: look again
                try:
                    running.extend(source.running_jobs())
                    break
                except RuntimeError:
                    continue
        blocking = next((job for job in running if current is not None and job.task is current), None)
        return _Sighting(since, blocking, running, stack)


def _who(job: RunningJob | None) -> str:
    return f"job {job.job_id}:{job.function}" if job is not None else "code outside any job"


def _message(stall: Stall, *, still: bool) -> str:
    now = time.monotonic()
    if still:
        held = f"has been blocked for {stall.duration_s:.1f}s so far"
    else:
        held = f"was blocked for {stall.duration_s:.2f}s"
    line = f"event loop {held} by {_who(stall.blocking)}"
    others = [job.label(now) for job in stall.running if job is not stall.blocking]
    if stall.blocking is not None:
        line += f" (running {now - stall.blocking.started:.1f}s)"
    line += f"; {plural(len(others), 'other job')} waited"
    if others:
        line += ": " + ", ".join(others[:10]) + (", …" if len(others) > 10 else "")
    if stall.blocking is not None:
        line += '; run blocking code with executor = "thread" or "process", or await it'

    if stall.stack:
        line += "\nthe blocking frame (innermost last):\n" + stall.stack.rstrip()
    else:
        line += "\n(the stall ended before its stack could be taken)"
    return line
