"""Jobs that finished lately, heard on the queues' done channels: the dashboard's "complete" view.

Runner workers publish every finish on ``KeyLayout.done_channel`` (``Job.result()`` wakes on it), so listening
costs them nothing: no key is written per completed job, which is most of a queue's traffic. The price is that a
listener knows only what finished while it listened (the last ``size`` per queue), and nothing an arq worker
finished (arq publishes nothing); a job is still found by its id while its result is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from runner.engine.lifecycle import REDIS_ERRORS
from runner.engine.protocol import finished_ids

logger = logging.getLogger("runner.recent")

RECENT_PER_QUEUE = 1000


class RecentFinishes:
    """The ids of the last ``size`` jobs finished in each of ``queues``, newest first, while ``run()`` listens.

    Args:
        pool: a runner pool (its key layout names the channels).
        queues: the queue names to listen to.
        size: ids kept per queue.
    """

    def __init__(self, pool: Any, queues: Sequence[str], size: int = RECENT_PER_QUEUE) -> None:
        self.pool = pool
        self.channels = {pool.key_layout.done_channel(q): q for q in queues}
        self._ids: dict[str, deque[str]] = {q: deque(maxlen=size) for q in queues}
        self._task: asyncio.Task[None] | None = None

    def ids(self, queue: str) -> list[str]:
        """The queue's recently finished ids, newest first, each once."""
        seen: set[str] = set()
        found = []
        for job_id in self._ids.get(queue, ()):
            if job_id not in seen:
                seen.add(job_id)
                found.append(job_id)
        return found

    def heard(self, channel: str, message: bytes) -> None:
        queue = self.channels.get(channel)
        if queue is not None:
            self._ids[queue].extendleft(finished_ids(message))

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run())

    async def run(self) -> None:
        """Listen until cancelled; a dropped connection is taken up again after a growing pause."""
        pause = 0.5
        while True:
            pubsub = self.pool.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self.channels)
                pause = 0.5
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        self.heard(message["channel"].decode(), message["data"])
            except REDIS_ERRORS as exc:
                logger.debug("listening for finished jobs stopped (%r); again in %gs", exc, pause)
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
