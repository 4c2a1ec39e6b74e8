"""A process's job budget: how many more jobs its workers may start before the process is recycled.

``runner start`` with ``max_jobs_per_process`` (or ``max_memory_per_process``) hands one budget to every worker of
the process. Each claim takes from it first, so the process starts exactly that many jobs; when it runs out (or
the memory check empties it) the workers stop claiming, let their running jobs finish, and end, while the
supervisor has already started the process that replaces this one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger("runner.worker")


class JobBudget:
    """Jobs left to start (None: no limit), shared by the workers of one process, all on one event loop."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.remaining = limit
        self.reason: str | None = None  # why it ran out, once it has
        self._on_exhausted: list[Callable[[str], None]] = []

    @property
    def exhausted(self) -> bool:
        return self.reason is not None

    def on_exhausted(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` once, when the budget runs out."""
        self._on_exhausted.append(callback)

    def take(self, wanted: int) -> int:
        """Reserve up to ``wanted`` job starts; how many may be claimed (0 once the budget is spent)."""
        if self.exhausted:
            return 0
        if self.remaining is None:
            return wanted
        granted = min(wanted, self.remaining)
        self.remaining -= granted
        return granted

    def give_back(self, unused: int) -> None:
        """A claim took fewer jobs than it reserved: the rest is for later claims."""
        if self.remaining is not None and unused > 0:
            self.remaining += unused

    def settle(self) -> None:
        """After a claim: when nothing is left to start, the budget is spent."""
        if self.remaining == 0 and not self.exhausted:
            self.exhaust(f"{self.limit} jobs (max_jobs_per_process = {self.limit})")

    def exhaust(self, reason: str) -> None:
        """Start no more jobs; ``reason`` says why (``"max_memory_per_process"``…)."""
        if self.exhausted:
            return
        self.reason = reason
        self.remaining = 0
        for callback in self._on_exhausted:
            try:
                callback(reason)
            except Exception:
                logger.exception("a job budget callback failed")
