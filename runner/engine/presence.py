"""Worker presence: what each live runner worker says about itself, for the dashboard's workers page.

Every few seconds a worker writes one JSON record (host, pid, start time, counters, the jobs it runs now) under
``runner:worker-info:<queue>:<worker id>``, living three intervals, and its id with the time into the queue's
``runner:presence:<queue>`` sorted set, so a reader finds the live workers of a queue with one range read instead
of a scan of the keyspace. A worker that stops cleanly removes both; one that dies drops out when its record
expires. arq never reads these keys; arq workers write none, so they appear only through arq's health key.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, cast

from runner._dist import DISTRIBUTION
from runner.engine.utils import timestamp_ms

PRESENCE_INTERVAL_S = 5.0
RECORD_LIFETIME_INTERVALS = 3
RUNNING_IDS_LISTED = 100  # a record lists at most this many running ids; ``running`` still counts them all
_HOST = socket.gethostname()


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)  # the import name runner is not the distribution's
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "?"


_VERSION = _version()


@dataclass
class WorkerPresence:
    """One worker's latest presence record."""

    worker_id: str
    queue: str
    host: str
    pid: int
    started_ms: int
    updated_ms: int
    version: str
    functions: list[str] = field(default_factory=list)
    max_jobs: int = 0
    jobs_complete: int = 0
    jobs_failed: int = 0
    jobs_retried: int = 0
    running: int = 0
    running_ids: list[str] = field(default_factory=list)
    burst: bool = False

    def uptime_s(self, now_ms: int) -> float:
        return max(now_ms - self.started_ms, 0) / 1000

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.worker_id,
            "queue": self.queue,
            "host": self.host,
            "pid": self.pid,
            "started_ms": self.started_ms,
            "updated_ms": self.updated_ms,
            "version": self.version,
            "functions": self.functions,
            "max_jobs": self.max_jobs,
            "jobs_complete": self.jobs_complete,
            "jobs_failed": self.jobs_failed,
            "jobs_retried": self.jobs_retried,
            "running": self.running,
            "running_ids": self.running_ids,
            "burst": self.burst,
        }


@dataclass(frozen=True)
class PresenceFacts:
    """What a worker's presence record says that does not change while it runs."""

    functions: tuple[str, ...]
    max_jobs: int
    burst: bool


def make_presence(
    *,
    worker_id: str,
    queue: str,
    started_ms: int,
    facts: PresenceFacts,
    counts: tuple[int, int, int],
    running_ids: Sequence[str],
) -> WorkerPresence:
    """This process's record; ``counts`` are jobs complete, failed and retried so far."""
    return WorkerPresence(
        worker_id=worker_id,
        queue=queue,
        host=_HOST,
        pid=os.getpid(),
        started_ms=started_ms,
        updated_ms=timestamp_ms(),
        version=_VERSION,
        functions=sorted(facts.functions),
        max_jobs=facts.max_jobs,
        jobs_complete=counts[0],
        jobs_failed=counts[1],
        jobs_retried=counts[2],
        running=len(running_ids),
        running_ids=list(running_ids)[:RUNNING_IDS_LISTED],
        burst=facts.burst,
    )


async def write_presence(pool: Any, record: WorkerPresence, interval_s: float = PRESENCE_INTERVAL_S) -> None:
    """Store ``record`` for ``RECORD_LIFETIME_INTERVALS`` intervals and drop entries of long-gone workers."""
    lifetime_ms = int(interval_s * 1000 * RECORD_LIFETIME_INTERVALS)
    registry = pool.key_layout.presence(record.queue)
    async with pool.pipeline(transaction=False) as pipe:
        pipe.set(
            pool.key_layout.worker_info(record.queue, record.worker_id), json.dumps(record.as_dict()), px=lifetime_ms
        )
        pipe.zadd(registry, {record.worker_id: record.updated_ms})
        # a dead worker's entry outlives its record only until the next live worker's write
        pipe.zremrangebyscore(registry, "-inf", record.updated_ms - lifetime_ms)
        pipe.pexpire(registry, lifetime_ms)
        await pipe.execute()


async def clear_presence(pool: Any, queue: str, worker_id: str) -> None:
    async with pool.pipeline(transaction=False) as pipe:
        pipe.delete(pool.key_layout.worker_info(queue, worker_id))
        pipe.zrem(pool.key_layout.presence(queue), worker_id)
        await pipe.execute()


async def read_presence(pool: Any, queues: Sequence[str]) -> dict[str, list[WorkerPresence]]:
    """The live workers of each queue, longest running first; a record that cannot be read is skipped."""
    async with pool.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.zrange(pool.key_layout.presence(queue), 0, -1)
        listed = cast(list[list[bytes]], await pipe.execute())
    wanted = [(queue, member.decode()) for queue, members in zip(queues, listed, strict=True) for member in members]
    found: dict[str, list[WorkerPresence]] = {queue: [] for queue in queues}
    if not wanted:
        return found
    raws = await pool.mget_any([pool.key_layout.worker_info(q, w) for q, w in wanted])
    for (queue, _), raw in zip(wanted, raws, strict=True):
        record = _parse(raw)
        if record is not None:
            found[queue].append(record)
    for records in found.values():
        records.sort(key=lambda r: (r.started_ms, r.worker_id))
    return found


def _parse(raw: bytes | None) -> WorkerPresence | None:
    if raw is None:  # expired since the registry was read
        return None
    try:
        data = json.loads(raw)
        return WorkerPresence(
            worker_id=str(data["id"]),
            queue=str(data["queue"]),
            host=str(data["host"]),
            pid=int(data["pid"]),
            started_ms=int(data["started_ms"]),
            updated_ms=int(data["updated_ms"]),
            version=str(data.get("version", "?")),
            functions=[str(f) for f in data.get("functions", [])],
            max_jobs=int(data.get("max_jobs", 0)),
            jobs_complete=int(data.get("jobs_complete", 0)),
            jobs_failed=int(data.get("jobs_failed", 0)),
            jobs_retried=int(data.get("jobs_retried", 0)),
            running=int(data.get("running", 0)),
            running_ids=[str(i) for i in data.get("running_ids", [])],
            burst=bool(data.get("burst", False)),
        )
    except (ValueError, KeyError, TypeError):
        return None
