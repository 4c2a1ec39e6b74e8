"""A pool of daemon threads for plain ``def`` job functions.

Threads are started as calls need them, up to ``size``. A call's timeout starts when a thread begins running it,
so a wait for a free thread does not count. Python cannot stop a running thread: when a call times out or is
cancelled (an abort, a stop) the awaiting coroutine gives up at once and the call's ``cancel_event`` is set, but
the function keeps its thread until it returns; what it returns then is dropped. A call cancelled before a thread
took it never runs. The threads are daemons, so a process told to exit does not wait for a function that hangs.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from runner.errors import JobExecutionFailed

logger = logging.getLogger("runner.threads")


_Setter = Callable[["asyncio.Future[Any]", Any], None]


class ThreadCall:
    """One call handed to the pool: the function, the futures the loop awaits, and what the thread reports back."""

    __slots__ = (
        "fn",
        "args",
        "kwargs",
        "label",
        "context",
        "loop",
        "started",
        "done",
        "cancel_event",
        "finished",
        "given_up_at",
        "_outcome",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        cancel_event: threading.Event,
        label: str,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.label = label
        self.context = contextvars.copy_context()  # contextvars reach the function, as with asyncio.to_thread
        self.loop = loop
        self.started: asyncio.Future[None] | None = None
        self.done: asyncio.Future[Any] = loop.create_future()
        self.cancel_event = cancel_event
        self.finished = threading.Event()  # set when the function returned or raised (or was skipped)
        self.given_up_at: float | None = None  # monotonic time the loop stopped waiting for it
        self._outcome: tuple[_Setter, Any] | None = None

    def run(self) -> None:
        """Run the function; its outcome is kept for ``report``, which the pool calls once its own books are kept."""
        if self.cancel_event.is_set():  # given up before a thread took it: it never starts
            self._outcome = None
            return
        if self.started is not None:
            self._report(_resolve, self.started, None)
        try:
            value = self.context.run(self.fn, *self.args, **self.kwargs)
        except (SystemExit, KeyboardInterrupt) as exc:
            error = JobExecutionFailed(f"the job raised {type(exc).__name__}({exc}), which would have ended its thread")
            self._outcome = (_reject, error)
        except BaseException as exc:
            self._outcome = (_reject, exc)
        else:
            self._outcome = (_resolve, value)

    def report(self) -> None:
        """Hand the outcome to the loop (or log that nobody waits for it any more)."""
        outcome, self._outcome = self._outcome, None
        self.finished.set()
        if outcome is None:
            return
        self._report(outcome[0], self.done, outcome[1])
        if self.given_up_at is not None:
            logger.warning(
                "%s returned %.1fs after it was given up (timed out, aborted or stopped); its outcome was dropped",
                self.label or getattr(self.fn, "__qualname__", "a job"),
                time.monotonic() - self.given_up_at,
            )

    def _report(self, setter: _Setter, future: asyncio.Future[Any], value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(setter, future, value)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _reject(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class ThreadPool:
    """Up to ``size`` daemon threads running sync functions for an event loop; see the module docstring."""

    def __init__(self, size: int, *, name: str = "runner-job") -> None:
        if size < 1:
            raise ValueError(f"a thread pool needs at least 1 thread (got {size})")
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue[ThreadCall | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._free = 0  # threads idle now and not promised to a queued call
        self._queued = 0  # calls waiting for a thread
        self._running: set[ThreadCall] = set()
        self._closed = False

    @property
    def threads(self) -> int:
        """Threads started so far."""
        return len(self._threads)

    @property
    def busy(self) -> int:
        """Threads running a function now, those whose call was given up included."""
        return len(self._running)

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        cancel_event: threading.Event | None = None,
        label: str = "",
    ) -> ThreadCall:
        """Queue a call; await ``call.started`` (when not None) and then ``call.done`` for its outcome."""
        if self._closed:
            raise RuntimeError("the thread pool is closed")
        call = ThreadCall(fn, args, kwargs or {}, asyncio.get_running_loop(), cancel_event or threading.Event(), label)
        with self._lock:
            if self._free > 0:
                self._free -= 1
            elif len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads) + 1}", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._queued += 1
                call.started = call.loop.create_future()
        self._queue.put(call)
        return call

    async def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        timeout_s: float | None = None,
        cancel_event: threading.Event | None = None,
        label: str = "",
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` in a thread and return its result.

        Raises:
            TimeoutError: it ran past ``timeout_s`` (counted from when a thread took it); the thread runs on.
            asyncio.CancelledError: the caller was cancelled; the thread, if it started, runs on.
            Exception: whatever the function raised.
        """
        call = self.submit(fn, args, kwargs, cancel_event=cancel_event, label=label)
        return await self.wait(call, timeout_s)

    async def wait(self, call: ThreadCall, timeout_s: float | None, on_start: Callable[[], None] | None = None) -> Any:
        """The outcome of a submitted call; on a timeout or a cancel the call is given up (see ``run``).

        ``on_start`` is called once a thread has taken the call, when its timeout starts.
        """
        try:
            if call.started is not None:
                await call.started
            if on_start is not None:
                on_start()
            async with asyncio.timeout(timeout_s):
                return await call.done
        except (asyncio.CancelledError, TimeoutError):
            call.given_up_at = time.monotonic()
            call.cancel_event.set()
            raise

    def _work(self) -> None:
        while True:
            call = self._queue.get()
            if call is None:
                return
            self._running.add(call)
            try:
                call.run()
            finally:
                self._running.discard(call)
                # the books first, then the outcome: a caller that submits again at once finds this thread free
                with self._lock:
                    if self._queued > 0:
                        self._queued -= 1  # this thread takes the next queued call
                    else:
                        self._free += 1
                call.report()

    def close(self) -> None:
        """Let idle threads end; a thread still running a function ends when it returns (it is a daemon)."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
