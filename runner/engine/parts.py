"""One worker run's parts (wired by ``Worker``), and the tasks that run in the background beside the poll loop."""

from __future__ import annotations

import asyncio
import logging

from runner.engine.executors.dispatch import JobExecutors
from runner.engine.health import HealthReporter
from runner.engine.job_runner import JobRunner
from runner.engine.leases import LeaseKeeper
from runner.engine.outcomes import OutcomeWriter
from runner.engine.poll import PollLoop

logger = logging.getLogger("runner.worker")


class WorkerParts:
    """One run's parts, and the tasks that run in the background beside the poll loop."""

    __slots__ = ("writer", "runner", "executors", "poll", "leases", "health", "background", "cron")

    def __init__(
        self,
        *,
        writer: OutcomeWriter,
        runner: JobRunner,
        executors: JobExecutors,
        poll: PollLoop,
        leases: LeaseKeeper,
        health: HealthReporter,
    ) -> None:
        self.writer = writer
        self.runner = runner
        self.executors = executors
        self.poll = poll
        self.leases = leases
        self.health = health
        self.background: list[asyncio.Task[None]] = []
        self.cron: asyncio.Task[None] | None = None

    async def stop_background(self) -> None:
        """The lease keeper and health reporter are asked to end (no Redis call is cut off); cron is cancelled."""
        self.leases.close()
        self.health.close()
        for task in self.background:
            try:
                await asyncio.wait_for(task, 10)
            except Exception as exc:
                logger.debug("background loop ended with %r", exc)
        if self.cron is not None:
            self.cron.cancel()
            await asyncio.gather(self.cron, return_exceptions=True)
