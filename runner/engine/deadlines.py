"""The timeouts of a worker's ``async def`` jobs: one timer for all of them instead of an ``asyncio.timeout`` each.

An ``asyncio.timeout`` block costs about 10 µs per job (a context manager, a timer handle, the task's cancel
bookkeeping), a tenth of a no-op job's whole path. Here a job's deadline goes into one heap and one timer is armed
for the earliest; when it fires, every job past its deadline that is still running is cancelled and marked
``TIMED_OUT``, which the job runner turns into the job's ``TimeoutError``, as it does for the lease keeper's
late cancel. A job that ends clears ``record.deadline``; its entry is dropped when its deadline comes round, or
earlier when finished entries outnumber the running ones (so the heap stays about the size of the registry).
"""

from __future__ import annotations

import asyncio
import heapq

from runner.engine.records import JobRecord, JobState

_COMPACT_MIN = 1024  # entries kept before the first compaction


class Deadlines:
    """The deadlines of the running jobs of one worker, on the running loop."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, JobRecord]] = []
        self._count = 0  # ties on a deadline keep their order, and records are never compared
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self._compact_at = _COMPACT_MIN

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, record: JobRecord, deadline: float) -> None:
        """Cancel ``record``'s job once the loop's time passes ``deadline``, unless it ended (or its
        ``deadline`` changed) before."""
        record.deadline = deadline
        self._count += 1
        heapq.heappush(self._heap, (deadline, self._count, record))
        if self._handle is None or deadline < self._armed_at:
            self._arm(deadline)
        if len(self._heap) > self._compact_at:
            self._compact()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._heap.clear()

    def _arm(self, deadline: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = deadline
        self._handle = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._handle = None
        heap = self._heap
        now = asyncio.get_running_loop().time()
        while heap and heap[0][0] <= now:
            deadline, _, record = heapq.heappop(heap)
            if record.deadline == deadline and record.state is JobState.RUNNING and record.cancel():
                record.state = JobState.TIMED_OUT
        if heap:
            self._arm(heap[0][0])

    def _compact(self) -> None:
        """Drop the entries of jobs that ended; the next compaction comes once as many have ended again."""
        self._heap = [entry for entry in self._heap if entry[2].deadline == entry[0]]
        heapq.heapify(self._heap)
        self._compact_at = max(2 * len(self._heap), _COMPACT_MIN)
