"""Job events: what the job runner tells the world about each job, and the observers that listen.

The runner publishes one ``JobEvent`` per step of a job's life to every subscribed ``JobObserver``, at once and
in order. The worker's own counts (``JobCounts``) and its log lines (``JobLog``) are two such observers; the
Prometheus metrics of ``runner start --metrics-port`` are a third, so raising the log level never loses a count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from runner.engine.utils import args_to_string, truncate
from runner.errors import DeserializationError

logger = logging.getLogger("runner.worker")


class JobEventKind(StrEnum):
    """One step of a job's life; the value is the ``outcome`` field of the job's JSON log line."""

    STARTED = "started"
    COMPLETE = "complete"
    FAILED = "failed"  # raised, timed out, or failed before it started (expired, unknown function, max tries)
    ABORTED = "aborted"
    RETRIED = "retried"  # the job raised Retry
    REQUEUED = "requeued"  # cancelled by a stop; it runs again


@dataclass(slots=True)
class JobEvent:
    """One job event (read-only by convention: not frozen, since a frozen dataclass costs a few µs per event to
    build, and the runner publishes two per job).

    Attributes:
        kind: what happened.
        queue: the worker's queue.
        job_id: the job.
        function: the function's name (``"<unknown>"`` before the payload was decoded).
        job_try: the try this run is.
        duration_s: how long the function ran (finished runs); None for ``STARTED`` and for jobs that failed
            before they started.
        since_enqueue_s: seconds from enqueue to this event (``STARTED`` and early failures, for the log line).
        args, kwargs: the job's arguments (``STARTED``).
        result: the return value (``COMPLETE``).
        error: the exception the job failed with (``FAILED``, and ``ABORTED`` before it started).
        detail: a few words for the log line: why an early failure failed, ``timed out``, a retry's delay, …
        delayed_s: how late the job started after it was due (``STARTED``; 0 when on time).
        internal: the failure came from a hook or the worker itself, not from the job function.
    """

    kind: JobEventKind
    queue: str
    job_id: str
    function: str
    job_try: int
    duration_s: float | None = None
    since_enqueue_s: float = 0.0
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    result: Any = None
    error: BaseException | None = None
    detail: str = ""
    delayed_s: float = 0.0
    internal: bool = False


class JobObserver(Protocol):
    """Anything that wants job events: ``job_event`` is called synchronously, in the worker's event loop."""

    def job_event(self, event: JobEvent) -> None: ...


class JobEvents:
    """The publisher: hands each event to every observer; an observer that raises is logged, never the job's fault."""

    def __init__(self, observers: tuple[JobObserver, ...] | list[JobObserver] = ()) -> None:
        self._observers: list[JobObserver] = list(observers)

    def subscribe(self, observer: JobObserver) -> None:
        if observer not in self._observers:
            self._observers.append(observer)

    def unsubscribe(self, observer: JobObserver) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def publish(self, event: JobEvent) -> None:
        for observer in self._observers:
            try:
                observer.job_event(event)
            except Exception as exc:
                logger.error("job event observer %r failed: %r", observer, exc, exc_info=exc)


class JobCounts:
    """The worker's running totals, as its health record and ``run_check`` report them.

    ``started`` counts claimed jobs the poll loop started (``max_burst_jobs`` limits it); the others come from
    job events.
    """

    __slots__ = ("complete", "failed", "retried", "started")

    def __init__(self) -> None:
        self.started = 0
        self.complete = 0
        self.failed = 0
        self.retried = 0

    def job_event(self, event: JobEvent) -> None:
        kind = event.kind
        if kind is JobEventKind.COMPLETE:
            self.complete += 1
        elif kind is JobEventKind.FAILED or kind is JobEventKind.ABORTED:
            self.failed += 1
        elif kind is JobEventKind.RETRIED or kind is JobEventKind.REQUEUED:
            self.retried += 1


class JobLog:
    """One compact line per job event on ``runner.worker``, with the event's fields as ``extra`` for JSON logs.

    The levels are arq's (see ``_level``); a failed job's line carries its traceback and, as ``extra``, its
    exception's ``extra()``, as arq's ``logger.exception`` does.

    Args:
        log_results: show return values in the completion line.
    """

    def __init__(self, *, log_results: bool = True) -> None:
        self.log_results = log_results

    def job_event(self, event: JobEvent) -> None:
        level = _level(event)
        if not logger.isEnabledFor(level):
            return
        kind = event.kind
        head = f"{event.job_id}:{event.function}"
        exc_info: BaseException | None = None
        extra = _extra(event)
        if kind is JobEventKind.STARTED:
            message = f"{event.since_enqueue_s:6.2f}s → {head}({args_to_string(event.args, event.kwargs or {})})"
            if event.job_try > 1:
                message += f" try={event.job_try}"
            if event.delayed_s:
                message += f" delayed={event.delayed_s:.2f}s"
        elif kind is JobEventKind.COMPLETE:
            shown = "" if event.result is None or not self.log_results else truncate(repr(event.result))
            message = f"{event.duration_s or 0:6.2f}s ← {head} ● {shown}"
        elif kind is JobEventKind.FAILED and event.internal:
            message = f"job {event.job_id} failed outside its function: {event.error!r}"
            exc_info = event.error
        elif kind is JobEventKind.FAILED and event.duration_s is None:
            message = f"{event.since_enqueue_s:6.2f}s ! {head} {event.detail}"
            if isinstance(event.error, DeserializationError):
                exc_info = event.error
        elif kind is JobEventKind.FAILED:
            error = event.error
            message = f"{event.duration_s:6.2f}s ! {head} {event.detail}, {type(error).__name__}: {error}"
            # as arq's logger.exception: the traceback, and the exception's extra() for error trackers
            exc_info = error
            extra["extra"] = _exception_extra(error)
        else:
            seconds = event.since_enqueue_s if event.duration_s is None else event.duration_s
            message = f"{seconds:6.2f}s {_MARKS[kind]} {head} {event.detail}"
        logger.log(level, "%s", message, exc_info=exc_info, extra=extra)


_MARKS = {JobEventKind.ABORTED: "⊘", JobEventKind.RETRIED: "↻", JobEventKind.REQUEUED: "↻"}


def _level(event: JobEvent) -> int:
    """arq's levels: a job function's failure (and a payload that cannot be decoded) is an ERROR, as is a fault of
    the worker's own; a job refused before it ran (expired, unknown function, out of tries) a WARNING; the rest
    INFO."""
    if event.kind is not JobEventKind.FAILED:
        return logging.INFO
    if event.internal or event.duration_s is not None or isinstance(event.error, DeserializationError):
        return logging.ERROR
    return logging.WARNING


def _exception_extra(error: BaseException | None) -> Any:
    """What arq logs as ``extra``: the exception's ``extra()`` (or ``extra`` attribute), else None."""
    value = getattr(error, "extra", None)
    if callable(value):
        try:
            value = value()
        except Exception as exc:  # the job's own code: never let it break the log line
            value = f"extra() raised {exc!r}"
    return value


def _extra(event: JobEvent) -> dict[str, Any]:
    return {
        "job_id": event.job_id,
        "function": event.function,
        "job_try": event.job_try,
        "duration": event.duration_s,
        "outcome": event.kind.value,
        "queue": event.queue,
    }
