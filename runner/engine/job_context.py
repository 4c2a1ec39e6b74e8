"""Which job a log record comes from: the job runner sets a context variable as a job starts, and
``JobContextFilter`` copies it onto every record logged while the job runs, by its function, its hooks and
anything they call (threads started with ``asyncio.to_thread`` and the thread executor carry the context too).

The engine configures no logging: ``runner start`` puts the filter on its handler; a program that runs a
``Worker`` itself can do the same, ``handler.addFilter(JobContextFilter())``, and read ``record.job_id``,
``record.function``, ``record.job_try`` and ``record.queue``.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(slots=True)
class JobContext:
    """The job whose code is running (read-only by convention; not frozen, which costs per job)."""

    job_id: str
    function: str
    job_try: int
    queue: str


CURRENT_JOB: ContextVar[JobContext | None] = ContextVar("runner_current_job", default=None)


def enter_job(context: JobContext) -> Token[JobContext | None]:
    """Mark the running task as running ``context``'s job; ``CURRENT_JOB.reset(token)`` ends it."""
    return CURRENT_JOB.set(context)


class JobContextFilter(logging.Filter):
    """Adds ``job_id``, ``function``, ``job_try`` and ``queue`` to records logged inside a job (never drops one).

    A record that already names a job (the worker's own job lines pass them as ``extra``) keeps its own.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = CURRENT_JOB.get()
        if context is not None and not hasattr(record, "job_id"):
            record.job_id = context.job_id
            record.function = context.function
            record.job_try = context.job_try
            record.queue = context.queue
        return True
