"""The worker process's side of recycling under ``runner start --processes N`` (runner/cli/supervisor.py).

The process's workers share one job budget (runner/engine/budget.py) of ``max_jobs_per_process`` starts, and a
check of the process's resident memory every second empties it once the memory passes ``max_memory_per_process``.
When the budget runs out the workers stop claiming and finish their running jobs, and the process tells the
supervisor on the pipe it was given (``--supervisor-fd``), so its replacement starts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from runner.engine.budget import JobBudget
from runner.engine.procinfo import format_bytes, rss_bytes

logger = logging.getLogger("runner.cli")

MEMORY_CHECK_S = 1.0
RETIRE_NOTICE = b"retire"


class Recycler:
    """This process's job budget, memory check and notice to the supervisor.

    Args:
        max_jobs: jobs the process starts before it retires (None: no limit).
        max_memory: resident bytes past which it retires (None: no limit).
        notify_fd: the write end of the supervisor's pipe, when a supervisor runs this process.
    """

    def __init__(self, max_jobs: int | None, max_memory: int | None, notify_fd: int | None) -> None:
        self.max_memory = max_memory
        self.notify_fd = notify_fd
        self.budget = JobBudget(max_jobs)
        self.budget.on_exhausted(self._retiring)
        self._on_retire: list[Callable[[], None]] = []

    @property
    def active(self) -> bool:
        return self.budget.limit is not None or self.max_memory is not None

    def on_retire(self, callback: Callable[[], None]) -> None:
        self._on_retire.append(callback)

    def _retiring(self, reason: str) -> None:
        logger.info("worker process %d retires after %s: it finishes its running jobs, then exits", os.getpid(), reason)
        for callback in self._on_retire:
            callback()
        if self.notify_fd is not None:
            with contextlib.suppress(OSError):  # the supervisor is gone: nobody to tell
                os.write(self.notify_fd, RETIRE_NOTICE + b" " + reason.encode() + b"\n")

    async def watch_memory(self) -> None:
        """Empty the budget once the process's resident memory passes ``max_memory`` (runs until cancelled)."""
        if self.max_memory is None:
            return
        while not self.budget.exhausted:
            rss = rss_bytes()
            if rss > self.max_memory:
                self.budget.exhaust(
                    f"{format_bytes(rss)} resident (max_memory_per_process = {format_bytes(self.max_memory)})"
                )
                return
            await asyncio.sleep(MEMORY_CHECK_S)
