"""Changing queues from outside a worker (engine/inspection.py only reads them): retry failed jobs, abort,
delete, purge waiting jobs or failures, for ``runner jobs`` and the dashboard.

Each change is one server-side script (scripts/requeue_failed.lua, purge.lua, delete_job.lua, purge_failed.lua)
that checks the state it acts on, so a job that moved on meanwhile (finished, was retried elsewhere, was taken by
a worker) is left alone and reported, never changed behind someone's back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from runner.engine import keys, scripts
from runner.engine.client import RunnerRedis
from runner.engine.inspection import CHUNK, JobRow, RowStatus, result_row, undecoded_arguments
from runner.engine.job import Job, serialize_job
from runner.engine.serializers import Deserializer, Serializer
from runner.engine.utils import timestamp_ms
from runner.errors import SerializationError, UnsafePayload


@dataclass
class RetryReport:
    """What a retry did: jobs queued again, and jobs left alone because they changed or cannot be read."""

    retried: int = 0
    skipped: int = 0
    unreadable: int = 0


async def retry_failed(
    pool: Any,
    queue: str,
    job_ids: Sequence[str],
    *,
    serializer: Serializer | None = None,
    deserializer: Deserializer | None = None,
    expires_extra_ms: int = keys.expires_extra_ms_default,
) -> RetryReport:
    """Enqueue failed jobs of ``queue`` again under their own ids, with their arguments and a fresh try count.

    Their failed results go in the same step (``requeue_failed.lua``, one call per job, a chunk of calls per round
    trip). A job whose result is gone, is not a failure, cannot be decoded, or whose id a new job took is skipped.
    """
    report = RetryReport()
    layout = pool.key_layout
    script = pool.register_script(scripts.REQUEUE_FAILED)
    for start in range(0, len(job_ids), CHUNK):
        chunk = list(job_ids[start : start + CHUNK])
        raws = await pool.mget_any([layout.result(queue, i) for i in chunk])
        now = timestamp_ms()
        calls = []
        for job_id, raw in zip(chunk, raws, strict=True):
            payload = _requeue_payload(job_id, raw, report, now, serializer, deserializer)
            if payload is None:
                continue
            script_keys = [
                layout.queue(queue),
                layout.wake(queue),
                layout.abort(queue),
                layout.result(queue, job_id),
                layout.job(queue, job_id),
                layout.retry(queue, job_id),
                layout.failed(queue),
                layout.failed_expiry(queue),
            ]
            calls.append((script_keys, [raw, payload, now, expires_extra_ms, job_id]))
        replies = await pool.run_scripts(script, calls)
        done = sum(1 for reply in replies if int(reply) == 1)
        report.retried += done
        report.skipped += len(calls) - done
    return report


def _requeue_payload(
    job_id: str,
    raw: bytes | None,
    report: RetryReport,
    now: int,
    serializer: Serializer | None,
    deserializer: Deserializer | None,
) -> bytes | None:
    """The new job payload for a failed result, or None (counted in ``report``) when it cannot be retried."""
    row = result_row(job_id, raw, deserializer) if raw is not None else None
    if row is None or row.status != "failed":
        report.skipped += 1
        return None
    if row.error is not None or undecoded_arguments(row):
        # an argument left undecoded (safe_pickle) would go back as a job no worker can run
        report.unreadable += 1
        return None
    try:
        return serialize_job(row.function, row.args, row.kwargs, None, now, serializer=serializer)
    except SerializationError:
        report.unreadable += 1
        return None


async def retry_all_failed(
    pool: Any,
    queue: str,
    *,
    function: str | None = None,
    serializer: Serializer | None = None,
    deserializer: Deserializer | None = None,
    expires_extra_ms: int = keys.expires_extra_ms_default,
) -> RetryReport:
    """Retry every failed job in ``queue``'s failed index (only ``function``'s, when given), a chunk at a time."""
    report = RetryReport()
    position = 0
    while True:
        read = [m.decode() for m in await pool.zrange(pool.key_layout.failed(queue), position, position + CHUNK - 1)]
        if not read:
            return report
        ids = read if function is None else await _of_function(pool, queue, read, function, deserializer)
        step = await retry_failed(
            pool, queue, ids, serializer=serializer, deserializer=deserializer, expires_extra_ms=expires_extra_ms
        )
        report.retried += step.retried
        report.skipped += step.skipped
        report.unreadable += step.unreadable
        # retried entries left the index; the rest stay, so the next chunk starts after them
        position += len(read) - step.retried
        await asyncio.sleep(0)


async def _of_function(
    pool: Any, queue: str, ids: list[str], function: str, deserializer: Deserializer | None
) -> list[str]:
    raws = cast(list[bytes | None], await pool.mget([pool.key_layout.result(queue, i) for i in ids]))
    rows: list[JobRow] = [result_row(i, r, deserializer) for i, r in zip(ids, raws, strict=True) if r is not None]
    return [r.job_id for r in rows if r.function == function]


async def purge_failed(pool: Any, queue: str) -> int:
    """Delete every failed result in ``queue``'s failed index; returns how many were deleted."""
    script = pool.register_script(scripts.PURGE_FAILED)
    layout = pool.key_layout
    deleted = 0
    while True:
        ids = [m.decode() for m in await pool.zrange(layout.failed(queue), 0, CHUNK - 1)]
        if not ids:
            return deleted
        deleted += int(
            await script(
                keys=[layout.failed(queue), layout.failed_expiry(queue), layout.result_prefix(queue)],
                args=[timestamp_ms(), *ids],
            )
        )


class Deleted(StrEnum):
    """What ``delete_job`` did."""

    waiting = "waiting"  # a queued or deferred job and its payload
    result = "result"  # a finished job's stored result
    nothing = "nothing"  # nothing was stored under the id
    running = "running"  # refused: a worker runs the job (abort it first)


_DELETE_REPLIES = {1: Deleted.waiting, 2: Deleted.result, 0: Deleted.nothing, -1: Deleted.running}


async def delete_job(pool: Any, queue: str, job_id: str) -> Deleted:
    """Delete a waiting job, or a finished job's result; a running job is refused (``Deleted.running``)."""
    script = pool.register_script(scripts.DELETE_JOB)
    layout = pool.key_layout
    reply = await script(
        keys=[
            layout.queue(queue),
            layout.abort(queue),
            layout.failed(queue),
            layout.failed_expiry(queue),
            layout.job(queue, job_id),
            layout.in_progress(queue, job_id),
            layout.retry(queue, job_id),
            layout.result(queue, job_id),
        ],
        args=[job_id],
    )
    return _DELETE_REPLIES[int(reply)]


async def request_abort(pool: Any, queue: str, job_id: str) -> None:
    """Ask the queue's workers to abort a job, without waiting for it to end (``Job.abort`` waits).

    A worker with ``allow_abort_jobs`` cancels it if it runs, or fails it with ``CancelledError`` before it starts;
    a deferred job is brought forward so a worker sees the abort now.
    """
    await Job(job_id, pool, _queue_name=queue).request_abort()


async def requeue_failed(
    pool: RunnerRedis,
    row: JobRow,
    queue_name: str,
    *,
    serializer: Serializer | None = None,
    deserializer: Deserializer | None = None,
    expires_extra_ms: int = keys.expires_extra_ms_default,
) -> bool:
    """Enqueue a failed job again under its own id, with its arguments and a fresh try count.

    Its failed result is removed in the same step.  Returns False when the result changed meanwhile or the id
    is taken (a new job with this id was enqueued).

    Raises:
        UnsafePayload: an argument is a class that was not decoded (``undecoded_arguments``); writing it back
            would enqueue a job that no worker can run.
    """
    found = undecoded_arguments(row)
    if found:
        raise UnsafePayload(
            f"job {row.job_id}'s arguments hold {found}, which is not unpickled here (that would run code named "
            "by data in Redis); enqueue it again from the application"
        )
    layout = pool.key_layout
    raw = cast(bytes | None, await pool.get(layout.result(queue_name, row.job_id)))
    if raw is None or result_row(row.job_id, raw, deserializer).status != RowStatus.FAILED:
        return False
    now = timestamp_ms()
    payload = serialize_job(row.function, row.args, row.kwargs, None, now, serializer=serializer)
    script = pool.register_script(scripts.REQUEUE_FAILED)
    done = await script(
        keys=[
            layout.queue(queue_name),
            layout.wake(queue_name),
            layout.abort(queue_name),
            layout.result(queue_name, row.job_id),
            layout.job(queue_name, row.job_id),
            layout.retry(queue_name, row.job_id),
            layout.failed(queue_name),
            layout.failed_expiry(queue_name),
        ],
        args=[raw, payload, now, expires_extra_ms, row.job_id],
    )
    return int(done) == 1


@dataclass
class PurgeReport:
    deleted: int = 0
    running: int = 0


async def purge_queue(
    pool: RunnerRedis, queue_name: str, *, on_chunk: Callable[[int], Any] | None = None
) -> PurgeReport:
    """Delete every queued and deferred job of a queue, a chunk per script call; running jobs are left alone.

    Args:
        on_chunk: called with the number of ids looked at after each chunk (for a progress bar).
    """
    report = PurgeReport()
    script = pool.register_script(scripts.PURGE)
    layout = pool.key_layout
    queue_key = layout.queue(queue_name)
    job, in_progress, retry = (
        layout.job_prefix(queue_name),
        layout.in_progress_prefix(queue_name),
        layout.retry_prefix(queue_name),
    )
    start = 0
    while True:
        members = cast(list[bytes], await pool.zrange(queue_key, start, start + CHUNK - 1))
        ids = [member.decode() for member in members]
        if not ids:
            return report
        job_keys = [key for job_id in ids for key in (job + job_id, in_progress + job_id, retry + job_id)]
        deleted, running = await script(keys=[queue_key, *job_keys], args=ids)
        report.deleted += int(deleted)
        report.running += int(running)
        # held jobs stay in the set, so the next chunk starts after them
        start += int(running)
        if on_chunk is not None:
            on_chunk(len(ids))
