"""Where a job function runs: on the event loop, in a thread, or in a subprocess.

    async    ``async def`` functions (the default for them): on the worker's event loop
    thread   plain ``def`` functions (the default for them): in the worker's thread pool, with ctx
    process  either kind: in a pool of job subprocesses; a timeout or an abort kills the subprocess

Pool sizes are per worker (per queue). ``threads`` defaults to ``max_jobs``: a sync I/O job holds a thread for as long
as it runs, and more threads than jobs at once would never be used (threads start as calls need them).
``processes`` defaults to the usable cores, shared among the worker processes of ``runner start --processes N``,
and never more than ``max_jobs``: CPU-bound work gains nothing from more processes than cores.

The pools are imported when first used, so what only names an executor (``runner validate``, ``func()``) does not
load asyncio's subprocess and thread machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Literal

from runner.engine.procinfo import usable_cpus

if TYPE_CHECKING:
    from runner.engine.executors.processes import (
        ProcessPool as ProcessPool,
        ProcessStartError as ProcessStartError,
        RemoteTraceback as RemoteTraceback,
    )
    from runner.engine.executors.threads import ThreadCall as ThreadCall, ThreadPool as ThreadPool

_LAZY = {
    "ProcessPool": "runner.engine.executors.processes",
    "ProcessStartError": "runner.engine.executors.processes",
    "RemoteTraceback": "runner.engine.executors.processes",
    "ThreadCall": "runner.engine.executors.threads",
    "ThreadPool": "runner.engine.executors.threads",
}

ExecutorKind = Literal["async", "thread", "process"]
EXECUTORS: tuple[ExecutorKind, ...] = ("async", "thread", "process")

__all__ = [
    "EXECUTORS",
    "ExecutorKind",
    "ProcessPool",
    "ProcessStartError",
    "RemoteTraceback",
    "ThreadCall",
    "ThreadPool",
    "default_processes",
    "default_threads",
]


def default_threads(max_jobs: int) -> int:
    """Threads of a worker's pool when ``threads`` is not set: one per job it may run at once."""
    return max(max_jobs, 1)


def default_processes(max_jobs: int, worker_processes: int = 1) -> int:
    """Job subprocesses of a worker when ``processes`` is not set: its share of the cores, at most ``max_jobs``.

    On 2 cores with one worker process that is 2; on 64 cores with ``--processes 4``, 16 each (if ``max_jobs``
    allows as many).
    """
    share = max(usable_cpus() // max(worker_processes, 1), 1)
    return max(min(share, max_jobs), 1)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
