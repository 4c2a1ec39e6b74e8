"""One worker run's parts, wired as ``Worker`` wires them but not started, for tests that drive one part directly."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from runner import Worker
from runner.engine.client import RunnerRedis
from runner.engine.executors.dispatch import JobExecutors
from runner.engine.parts import WorkerParts


@contextlib.asynccontextmanager
async def wired(pool: RunnerRedis, functions: list[Any], **options: Any) -> AsyncIterator[tuple[Worker, WorkerParts]]:
    """A worker on ``pool`` and its parts; the executors and the lease thread's connection end with the block."""
    worker = Worker(functions, redis_pool=pool, burst=True, handle_signals=False, **options)
    executors = JobExecutors(threads=1, processes=1)
    parts = worker._wire(pool, executors, worker.lanes[0])
    try:
        yield worker, parts
    finally:
        await parts.writer.wait_idle()
        await executors.close()
        parts.leases.thread.client.close()
