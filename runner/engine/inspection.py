"""Reading queues from outside a worker: what ``runner info``, ``check``, ``jobs`` and the metrics show.

It only reads; changing queues from outside a worker (retry, purge, delete) is steering.py.

Pickled payloads are read without running code from Redis (``safe_pickle``): a class beyond plain data shows as
an ``Undecoded`` value naming it. Everything here reads the pool's key layout (keys.py; arq's by default), so it
sees jobs that arq processes wrote and ran too:
  queued       in the queue, due (score <= now), no in-progress key;
  deferred     in the queue, not yet due, no in-progress key;
  in progress  in the queue with an in-progress key (a runner worker moves the score of a job it runs to
               now + lease, an arq worker keeps it, so the score alone cannot tell);
  complete / failed   a stored result with ``s`` true / false.
Each is a ``RowStatus``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from runner.engine.client import RunnerRedis
from runner.engine.flow import LimitUse, limit_uses, waiting_counts
from runner.engine.job import UNKNOWN, JobResult, JobStatus, deserialize_job_raw, deserialize_result
from runner.engine.safe_pickle import undecoded_in
from runner.engine.serializers import Deserializer, reading_deserializer
from runner.engine.utils import timestamp_ms, to_unix_ms
from runner.errors import DeserializationError

STATS_WINDOW_MINUTES = 5
CHUNK = 500  # ids per read


class RowStatus(StrEnum):
    """A job's state as ``runner jobs`` shows it: ``JobStatus``'s, with a stored result told apart by success."""

    QUEUED = JobStatus.queued.value
    DEFERRED = JobStatus.deferred.value
    IN_PROGRESS = JobStatus.in_progress.value
    COMPLETE = JobStatus.complete.value
    FAILED = "failed"
    UNKNOWN = "unknown"  # a job key with no queue holding its id


STATUSES = tuple(status.value for status in RowStatus if status is not RowStatus.UNKNOWN)


def glob_escape(text: str) -> str:
    """``text`` as a literal in a SCAN/KEYS pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


_HEALTH_FIELD = re.compile(r"\b(j_complete|j_failed|j_retried|j_ongoing|queued)=(\d+)\b")
_HEALTH_NAMES = {"j_complete": "complete", "j_failed": "failed", "j_retried": "retried", "j_ongoing": "ongoing"}


def parse_health_line(line: str) -> dict[str, Any]:
    """arq's health line (``Nov-23 21:50:12 j_complete=3 j_failed=0 j_retried=1 j_ongoing=2 queued=5``) as fields.

    Returns ``{"time": "Nov-23 21:50:12", "complete": 3, "failed": 0, "retried": 1, "ongoing": 2, "queued": 5}``;
    counts the line lacks are left out, and ``time`` is whatever precedes the first count (arq writes no year).
    """
    fields: dict[str, Any] = {}
    first = _HEALTH_FIELD.search(line)
    fields["time"] = (line[: first.start()] if first else line).strip() or None
    for name, value in _HEALTH_FIELD.findall(line):
        fields[_HEALTH_NAMES.get(name, name)] = int(value)
    return fields


@dataclass
class WorkerHealth:
    """One worker's own health record (``runner:workers:<queue>:<id>``); it exists while the worker reports."""

    worker_id: str
    line: str
    ttl_ms: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.worker_id,
            "health": parse_health_line(self.line),
            "health_line": self.line,
            "expires_in_s": max(self.ttl_ms, 0) / 1000,
        }


@dataclass
class QueueStats:
    """One queue at one moment, as ``runner info`` shows it."""

    queue: str
    now_ms: int
    queued: int
    deferred: int
    in_progress: int
    oldest_queued_score: int | None
    recent: dict[str, int]
    window_minutes: int
    workers: list[WorkerHealth]
    arq_health: str | None
    limits: list[LimitUse] = field(default_factory=list)

    @property
    def oldest_queued_age_s(self) -> float | None:
        """Seconds the longest-waiting due job has waited since it became due."""
        if self.oldest_queued_score is None:
            return None
        return max(self.now_ms - self.oldest_queued_score, 0) / 1000

    def per_minute(self, outcome: str) -> float:
        return self.recent.get(outcome, 0) / self.window_minutes

    @property
    def workers_alive(self) -> int:
        """Runner workers with a live record; an arq worker's shared health key counts as one when none has."""
        if self.workers:
            return len(self.workers)
        return 1 if self.arq_health else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "queued": self.queued,
            "deferred": self.deferred,
            "in_progress": self.in_progress,
            "oldest_queued_age_s": self.oldest_queued_age_s,
            "completed_per_min": self.per_minute("complete"),
            "failed_per_min": self.per_minute("failed"),
            "retried_per_min": self.per_minute("retried"),
            "window_minutes": self.window_minutes,
            "completed_in_window": self.recent.get("complete", 0),
            "failed_in_window": self.recent.get("failed", 0),
            "retried_in_window": self.recent.get("retried", 0),
            "workers_alive": self.workers_alive,
            "workers": [w.as_dict() for w in self.workers],
            "arq_health": None if self.arq_health is None else parse_health_line(self.arq_health),
            "limits": [use.as_dict() for use in self.limits],
        }


@dataclass
class JobRow:
    """One job as ``runner jobs list`` and ``show`` see it."""

    job_id: str
    queue: str | None
    status: str
    function: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    job_try: int | None = None
    enqueue_ms: int | None = None
    score: int | None = None
    result: JobResult | None = None
    error: str | None = None  # the payload could not be decoded


async def in_progress_ids(pool: RunnerRedis, queue_name: str) -> set[str]:
    """Ids of the queue's jobs that a worker holds right now."""
    layout = pool.key_layout
    prefix = layout.in_progress_prefix(queue_name)
    held = [k[len(prefix) :] async for k in pool.scan_iter(match=glob_escape(prefix) + "*", count=1000)]
    if not held:
        return set()
    ids = [cast(bytes, k).decode() for k in held]
    scores = await pool.zmscore(layout.queue(queue_name), ids)
    return {job_id for job_id, score in zip(ids, scores, strict=True) if score is not None}


async def worker_health(pool: RunnerRedis, queue_name: str) -> list[WorkerHealth]:
    """The live per-worker health records of a queue, by worker id."""
    prefix = pool.key_layout.workers_prefix(queue_name)
    found = sorted([k async for k in pool.scan_iter(match=glob_escape(prefix) + "*", count=1000)])
    if not found:
        return []
    async with pool.pipeline(transaction=False) as pipe:
        for key in found:
            pipe.get(key)
            pipe.pttl(key)
        values = await pipe.execute()
    records = []
    for index, key in enumerate(found):
        line, ttl = values[2 * index], values[2 * index + 1]
        if line is not None:  # expired between the scan and the read
            records.append(WorkerHealth(key.decode()[len(prefix) :], line.decode(), int(ttl)))
    return records


async def recent_counts(
    pool: RunnerRedis, queue_name: str, *, now_ms: int | None = None, minutes: int = STATS_WINDOW_MINUTES
) -> dict[str, int]:
    """complete / failed / retried counts of this minute and the ``minutes - 1`` before it."""
    minute = (now_ms or timestamp_ms()) // 60_000
    async with pool.pipeline(transaction=False) as pipe:
        for m in range(minute - minutes + 1, minute + 1):
            pipe.hgetall(pool.key_layout.stats(queue_name, m))
        buckets: list[dict[bytes, bytes]] = await pipe.execute()
    totals = {"complete": 0, "failed": 0, "retried": 0}
    for bucket in buckets:
        for name, count in bucket.items():
            totals[name.decode()] = totals.get(name.decode(), 0) + int(count)
    return totals


async def queue_stats(
    pool: RunnerRedis,
    queue_name: str,
    *,
    health_check_key: str | None = None,
    now_ms: int | None = None,
    window_minutes: int = STATS_WINDOW_MINUTES,
) -> QueueStats:
    """Counts, the oldest due job, recent outcomes and live workers of one queue (over all its shards, summed)."""
    now = now_ms or timestamp_ms()
    shards = pool.shard_queues(queue_name)
    found = [
        await _shard_stats(pool, name, health_check_key if i == 0 else None, now, window_minutes)
        for i, name in enumerate(shards)
    ]
    if len(found) == 1:
        return found[0]
    first = found[0]
    recent: dict[str, int] = {}
    for one in found:
        for outcome, count in one.recent.items():
            recent[outcome] = recent.get(outcome, 0) + count
    workers = {w.worker_id: w for one in reversed(found) for w in one.workers}  # a worker has a record per shard
    oldest = [one.oldest_queued_score for one in found if one.oldest_queued_score is not None]
    return QueueStats(
        queue=queue_name,
        now_ms=now,
        queued=sum(one.queued for one in found),
        deferred=sum(one.deferred for one in found),
        in_progress=sum(one.in_progress for one in found),
        oldest_queued_score=min(oldest) if oldest else None,
        recent=recent,
        window_minutes=window_minutes,
        workers=list(workers.values()),
        arq_health=first.arq_health,
        limits=[use for one in found for use in one.limits],
    )


async def _shard_stats(
    pool: RunnerRedis, queue_name: str, health_check_key: str | None, now: int, window_minutes: int
) -> QueueStats:
    running = await in_progress_ids(pool, queue_name)
    layout = pool.key_layout
    queue_key = layout.queue(queue_name)
    async with pool.pipeline(transaction=False) as pipe:
        pipe.zcount(queue_key, "-inf", now)
        pipe.zcount(queue_key, f"({now}", "+inf")
        pipe.get(health_check_key or layout.health_check(queue_name))
        pipe.get(layout.health_writer(queue_name))
        due, future, shared, ours = await pipe.execute()
    running_due = 0
    if running:
        scores = await pool.zmscore(queue_key, list(running))
        running_due = sum(1 for s in scores if s is not None and s <= now)
    oldest: int | None = None
    offset = 0
    while oldest is None and offset < due:
        # the first due job nobody holds; held jobs are few, so this is one read almost always
        entries = cast(
            list[tuple[bytes, float]],
            await pool.zrangebyscore(queue_key, "-inf", now, start=offset, num=len(running) + 10, withscores=True),
        )
        if not entries:
            break
        for member, score in entries:
            if member.decode() not in running:
                oldest = int(score)
                break
        offset += len(entries)
    # flow jobs wait parked far in the future (runner/engine/flow.py): the due ones count as queued
    flow_waiting, flow_delayed = await waiting_counts(pool, queue_name)
    return QueueStats(
        queue=queue_name,
        now_ms=now,
        queued=due - running_due + flow_waiting - flow_delayed,
        deferred=future - (len(running) - running_due) - (flow_waiting - flow_delayed),
        in_progress=len(running),
        oldest_queued_score=oldest,
        recent=await recent_counts(pool, queue_name, now_ms=now, minutes=window_minutes),
        window_minutes=window_minutes,
        workers=await worker_health(pool, queue_name),
        arq_health=_arq_workers_line(shared, ours),
        limits=await limit_uses(pool, queue_name, now_ms=now),
    )


def _arq_workers_line(shared: bytes | None, ours: bytes | None) -> str | None:
    """arq's shared health line, unless a runner worker wrote it last: runner workers are judged by their own
    records (renewed every half lease), so a runner worker killed an hour before the key expires is not counted."""
    if shared is None or shared == ours:
        return None
    return shared.decode()


async def arq_health(pool: RunnerRedis, queue_name: str, health_check_key: str | None = None) -> str | None:
    """The health line an arq worker wrote to the queue's shared key, or None (see ``_arq_workers_line``)."""
    layout = pool.key_layout
    async with pool.pipeline(transaction=False) as pipe:
        pipe.get(health_check_key or layout.health_check(queue_name))
        pipe.get(layout.health_writer(queue_name))
        shared, ours = await pipe.execute()
    return _arq_workers_line(shared, ours)


def row_status(score: int, held: bool, now: int) -> RowStatus:
    """The state of a queue entry with ``score``, claimed or not, at ``now`` (unix ms)."""
    if held:
        return RowStatus.IN_PROGRESS
    return RowStatus.DEFERRED if score > now else RowStatus.QUEUED


async def queue_jobs(
    pool: RunnerRedis, queue_name: str, *, deserializer: Deserializer | None = None, now_ms: int | None = None
) -> AsyncIterator[JobRow]:
    """The queue's jobs in score order (shard by shard, for a queue split over shards), with their status."""
    for shard in pool.shard_queues(queue_name):
        async for row in _shard_jobs(pool, shard, deserializer, now_ms or timestamp_ms()):
            yield row


async def _shard_jobs(
    pool: RunnerRedis, queue_name: str, deserializer: Deserializer | None, now: int
) -> AsyncIterator[JobRow]:
    running = await in_progress_ids(pool, queue_name)
    layout = pool.key_layout
    start = 0
    while True:
        entries = cast(
            list[tuple[bytes, float]],
            await pool.zrange(layout.queue(queue_name), start, start + CHUNK - 1, withscores=True),
        )
        if not entries:
            return
        start += len(entries)
        ids = [member.decode() for member, _ in entries]
        payloads = cast(list[bytes | None], await pool.mget([layout.job(queue_name, i) for i in ids]))
        held = [i for i in ids if i in running]
        # a running job's try number lives in its retry counter, not in its payload
        tries = cast(list[bytes | None], await pool.mget([layout.retry(queue_name, i) for i in held])) if held else []
        try_of = {job_id: int(t) for job_id, t in zip(held, tries, strict=True) if t is not None}
        for job_id, (_, score), payload in zip(ids, entries, payloads, strict=True):
            row = JobRow(job_id, queue_name, row_status(int(score), job_id in running, now), "", score=int(score))
            fill_from_payload(row, payload, deserializer)
            if job_id in try_of:
                row.job_try = max(row.job_try or 0, try_of[job_id])
            yield row


def fill_from_payload(row: JobRow, payload: bytes | None, deserializer: Deserializer | None) -> None:
    """Set the row's call from a job payload; a missing or undecodable payload is said so in ``row.error``."""
    if payload is None:
        row.function, row.error = "?", "its job key is gone (expired, or removed while it was read)"
        return
    try:
        row.function, row.args, row.kwargs, row.job_try, row.enqueue_ms = deserialize_job_raw(
            payload, deserializer=reading_deserializer(deserializer)
        )
    except DeserializationError as exc:
        row.function, row.error = "?", str(exc)


async def results(
    pool: RunnerRedis, *, deserializer: Deserializer | None = None, queue_name: str | None = None
) -> list[JobRow]:
    """Every stored result (of ``queue_name``, or of any queue), newest finish first.

    A result that names no queue (arq before 0.26 wrote none) is listed under every queue; a queue split over
    shards has its results on each shard, and each names its shard.
    """
    rows = []
    for shard in pool.shard_queues(queue_name or pool.default_queue_name):
        prefix = pool.key_layout.result_prefix(shard)
        found = [k async for k in pool.scan_iter(match=glob_escape(prefix) + "*", count=1000)]
        for i in range(0, len(found), CHUNK):
            chunk = found[i : i + CHUNK]
            payloads = cast(list[bytes | None], await pool.mget(chunk))
            for key, payload in zip(chunk, payloads, strict=True):
                if payload is None:
                    continue
                row = result_row(key.decode()[len(prefix) :], payload, deserializer)
                if queue_name is None or row.queue in (None, shard):
                    rows.append(row)
    rows.sort(key=lambda r: -(r.result.finish_time.timestamp() if r.result else 0))
    return rows


def undecoded_arguments(row: JobRow) -> str | None:
    """The name of a class in the job's arguments that was not decoded (see ``safe_pickle``), or None."""
    found = next(undecoded_in([row.args, row.kwargs]), None)
    return None if found is None else found.name


def result_row(job_id: str, payload: bytes, deserializer: Deserializer | None) -> JobRow:
    try:
        result = deserialize_result(payload, deserializer=reading_deserializer(deserializer))
    except DeserializationError as exc:
        return JobRow(job_id, None, RowStatus.FAILED, "?", error=str(exc))
    return JobRow(
        job_id,
        None if result.queue_name == UNKNOWN else result.queue_name,
        RowStatus.COMPLETE if result.success else RowStatus.FAILED,
        result.function,
        result.args,
        result.kwargs,
        result.job_try,
        to_unix_ms(result.enqueue_time),
        result=result,
    )


async def find_job(
    pool: RunnerRedis, job_id: str, queue_names: Sequence[str], *, deserializer: Deserializer | None = None
) -> JobRow | None:
    """Everything stored about one job, looked for in ``queue_names``; None when nothing is."""
    queue_names = [pool.shard_queue(name, job_id) for name in queue_names]  # a sharded queue: the id's shard
    # arq's layout keeps a job's keys apart from its queue; a layout that does not looks in the first queue
    layout, home = pool.key_layout, queue_names[0] if queue_names else pool.default_queue_name
    async with pool.pipeline(transaction=False) as pipe:
        pipe.get(layout.result(home, job_id))
        pipe.get(layout.job(home, job_id))
        pipe.exists(layout.in_progress(home, job_id))
        pipe.get(layout.retry(home, job_id))
        for name in queue_names:
            pipe.zscore(layout.queue(name), job_id)
        result_raw, job_raw, held, tries, *scores = await pipe.execute()
    if result_raw is not None:
        return result_row(job_id, result_raw, deserializer)
    queue = next((name for name, score in zip(queue_names, scores, strict=True) if score is not None), None)
    if queue is None and job_raw is None:
        return None
    score = None if queue is None else int(scores[list(queue_names).index(queue)])
    status = row_status(score, False, timestamp_ms()) if score is not None else RowStatus.UNKNOWN
    if held:
        status = RowStatus.IN_PROGRESS
    row = JobRow(job_id, queue, status, "", score=score)
    fill_from_payload(row, job_raw, deserializer)
    if tries is not None:
        # the counter counts starts so far; it is the try number of the current run while one goes on
        row.job_try = max(row.job_try or 0, int(tries))
    return row
