"""Reading queues page by page, for the dashboard: summaries, job pages, failed jobs, search, per-minute counts.

Nothing here loads a whole queue or scans the keyspace on the common paths, so a page costs the same with ten jobs
queued or a million:
  summary      one read-only script per queue counts the states (scripts/queue_summary.lua);
  job pages    a range of the queue's sorted set, then one read of those jobs' payloads and claims;
  failed jobs  the per-queue failed index the workers keep (``KeyLayout.failed``), newest first;
  filters      a function filter reads forward in chunks and stops after a budget, returning where it got to.
Only the id search reads a whole sorted set (ZSCAN, server side, when the exact id is not found).

Positions are offsets into the range a view reads (the whole queue, the due range, the deferred range, the failed
index), so "next page" is the position after the last entry looked at, and stays right while jobs come and go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from runner.engine import scripts
from runner.engine.inspection import JobRow, fill_from_payload, find_job, glob_escape, result_row, row_status
from runner.engine.presence import WorkerPresence, read_presence
from runner.engine.safe_pickle import Undecoded
from runner.engine.serializers import Deserializer
from runner.engine.utils import timestamp_ms

QUEUE_STATES = ("queued", "deferred", "in_progress")
STATES = (*QUEUE_STATES, "failed", "complete")
FRONT_CHECKED = 200  # first due jobs checked for an arq worker's claim (arq takes jobs from the front)
NEAR_CHECKED = 2000  # jobs due within the lease window checked for a runner worker's claim
SCAN_BUDGET = 2000  # entries a filtered page may look at before it returns what it found
SEARCH_LIMIT = 50
_CHUNK = 500


@dataclass
class QueueSummary:
    """One queue's counts at ``now_ms``.

    ``exact`` is False when more jobs lay where held jobs are looked for than were checked, so ``in_progress``
    is a lower bound (and queued/deferred may count a few running jobs).
    """

    queue: str
    now_ms: int
    queued: int
    deferred: int
    in_progress: int
    failed: int
    oldest_due_ms: int | None
    held_ids: list[str]
    exact: bool
    workers: list[WorkerPresence] = field(default_factory=list)
    arq_health: str | None = None

    @property
    def oldest_due_age_s(self) -> float | None:
        """How long the longest-waiting due job has waited since it became due."""
        return None if self.oldest_due_ms is None else max(self.now_ms - self.oldest_due_ms, 0) / 1000

    @property
    def workers_alive(self) -> int:
        """Runner workers with a live presence record; an arq worker's health key counts as one when none has."""
        return len(self.workers) if self.workers else (1 if self.arq_health else 0)

    def count(self, state: str) -> int:
        return cast(int, getattr(self, state))


@dataclass
class MinuteCount:
    """Outcomes of one minute of one queue, from the workers' per-minute stats hashes."""

    minute_ms: int
    complete: int = 0
    failed: int = 0
    retried: int = 0


@dataclass
class JobPage:
    """One page of a view.

    Attributes:
        rows: the jobs shown.
        position: where in the view's range this page started.
        next_position: where the next page starts; None at the end.
        total: how many jobs the view's state holds (before a function filter).
        examined: entries looked at for this page.
        budget_hit: a filter stopped after ``SCAN_BUDGET`` entries; there may be more matches further on.
    """

    rows: list[JobRow]
    position: int
    next_position: int | None
    total: int
    examined: int
    budget_hit: bool = False


@dataclass
class JobDetail:
    """Everything stored about one job, and the timers on its keys."""

    row: JobRow
    abort_requested_ms: int | None
    claim_ttl_ms: int | None
    job_ttl_ms: int | None
    result_ttl_ms: int | None  # -1: kept forever


async def queue_summaries(
    pool: Any,
    queues: Sequence[str],
    *,
    window_ms: dict[str, int] | None = None,
    health_check_keys: dict[str, str] | None = None,
    now_ms: int | None = None,
) -> list[QueueSummary]:
    """Counts, the oldest due job, failures and live workers of each queue, in one round trip per part.

    Args:
        window_ms: per queue, the longest lease its runner workers use (default 10 s): a job they hold is scored
            at most this far ahead.
        health_check_keys: per queue, arq's health key (default ``<queue>:health-check``).
    """
    now = now_ms or timestamp_ms()
    layout = pool.key_layout
    presence = await read_presence(pool, queues)
    script = pool.register_script(scripts.QUEUE_SUMMARY)
    calls = []
    for queue in queues:
        listed = [i for w in presence[queue] for i in w.running_ids]
        window = (window_ms or {}).get(queue, 10_000) + 1000
        script_keys = [layout.queue(queue), layout.failed(queue), layout.failed_expiry(queue)]
        calls.append(
            ([*script_keys, layout.in_progress_prefix(queue)], [now, window, FRONT_CHECKED, NEAR_CHECKED, *listed])
        )
    counted = await pool.run_scripts(script, calls)
    healths = await pool.mget_any([(health_check_keys or {}).get(q) or layout.health_check(q) for q in queues])
    summaries = []
    for index, queue in enumerate(queues):
        reply, health = counted[index], healths[index]
        due, future, held_due, held_future, oldest, failed, exact = (int(float(v)) for v in reply[:7])
        summaries.append(
            QueueSummary(
                queue=queue,
                now_ms=now,
                queued=max(due - held_due, 0),
                deferred=max(future - held_future, 0),
                in_progress=held_due + held_future,
                failed=max(failed, 0),
                oldest_due_ms=None if oldest < 0 else oldest,
                held_ids=sorted(v.decode() for v in reply[7:]),
                exact=bool(exact),
                workers=presence[queue],
                arq_health=health.decode(errors="replace") if health else None,
            )
        )
    return summaries


async def minute_counts(pool: Any, queue: str, *, minutes: int = 60, now_ms: int | None = None) -> list[MinuteCount]:
    """Outcomes per minute over the last ``minutes`` minutes (this one included), oldest first.

    Runner workers count every outcome in a hash per minute that lives a little over an hour; arq workers count
    none, so their jobs do not show here.
    """
    minute = (now_ms or timestamp_ms()) // 60_000
    span = range(minute - minutes + 1, minute + 1)
    async with pool.pipeline(transaction=False) as pipe:
        for m in span:
            pipe.hgetall(pool.key_layout.stats(queue, m))
        buckets = cast(list[dict[bytes, bytes]], await pipe.execute())
    counts = []
    for m, bucket in zip(span, buckets, strict=True):
        entry = MinuteCount(m * 60_000)
        for name, value in bucket.items():
            if name.decode() in ("complete", "failed", "retried"):
                setattr(entry, name.decode(), int(value))
        counts.append(entry)
    return counts


async def _queue_rows(
    pool: Any, queue: str, entries: Sequence[tuple[str, int]], deserializer: Deserializer | None, now: int
) -> list[JobRow]:
    """Rows for queue entries: their payloads, claims and try counters in one round trip."""
    if not entries:
        return []
    ids = [job_id for job_id, _ in entries]
    layout = pool.key_layout
    async with pool.pipeline(transaction=False) as pipe:
        pipe.mget([layout.job(queue, i) for i in ids])
        pipe.mget([layout.retry(queue, i) for i in ids])
        for job_id in ids:
            pipe.exists(layout.in_progress(queue, job_id))
        payloads, tries, *held = await pipe.execute()
    rows = []
    for (job_id, score), payload, job_try, is_held in zip(entries, payloads, tries, held, strict=True):
        row = JobRow(job_id, queue, row_status(score, bool(is_held), now), "", score=score)
        fill_from_payload(row, payload, deserializer)
        if is_held and job_try is not None:
            # a running job's try number lives in its retry counter, not in its payload
            row.job_try = max(row.job_try or 0, int(job_try))
        rows.append(row)
    return rows


async def _range(pool: Any, queue: str, state: str | None, now: int, start: int, count: int) -> list[tuple[str, int]]:
    """``count`` entries of a view's range from ``start``: (id, score) in the view's order."""
    key = pool.key_layout.queue(queue)
    if state == "failed":
        raw = await pool.zrevrange(pool.key_layout.failed(queue), start, start + count - 1, withscores=True)
    elif state == "queued":
        raw = await pool.zrangebyscore(key, "-inf", now, start=start, num=count, withscores=True)
    elif state == "deferred":
        raw = await pool.zrangebyscore(key, f"({now}", "+inf", start=start, num=count, withscores=True)
    else:
        raw = await pool.zrange(key, start, start + count - 1, withscores=True)
    return [(member.decode(), int(score)) for member, score in cast(list[tuple[bytes, float]], raw)]


async def _failed_rows(
    pool: Any, queue: str, entries: Sequence[tuple[str, int]], deserializer: Deserializer | None
) -> list[JobRow]:
    """Rows for failed-index entries; one whose result expired or is no longer a failure is left out."""
    if not entries:
        return []
    raws = cast(list[bytes | None], await pool.mget([pool.key_layout.result(queue, i) for i, _ in entries]))
    rows = []
    for (job_id, _), raw in zip(entries, raws, strict=True):
        if raw is None:
            continue
        row = result_row(job_id, raw, deserializer)
        if row.status == "failed":
            row.queue = row.queue or queue
            rows.append(row)
    return rows


async def job_page(
    pool: Any,
    summary: QueueSummary,
    *,
    state: str | None = None,
    function: str | None = None,
    position: int = 0,
    limit: int = 50,
    deserializer: Deserializer | None = None,
    recent_ids: Sequence[str] = (),
) -> JobPage:
    """One page of a queue's jobs: all of them in score order, or one state; optionally only one function.

    Args:
        summary: the queue's summary just read (its counts and held ids are used).
        state: None (every job in the queue), "queued", "deferred", "in_progress", "failed" (newest first) or
            "complete" (of ``recent_ids``, newest first: see recent.py).
        function: only jobs of this function; read forward in chunks for at most ``SCAN_BUDGET`` entries.
        position: where in the view's range to start.
        recent_ids: ids of jobs that finished lately, newest first (the "complete" view reads them).
    """
    if state is not None and state not in STATES:
        raise ValueError(f"unknown state {state!r}; choose one of {', '.join(STATES)}")
    if state == "complete":
        return await _complete_page(pool, summary.queue, recent_ids, function, position, limit, deserializer)
    queue, now = summary.queue, summary.now_ms
    total = summary.count(state) if state else summary.queued + summary.deferred + summary.in_progress
    if state == "in_progress":
        return await _held_page(pool, summary, function, position, limit, deserializer)
    rows: list[JobRow] = []
    cursor = position
    examined = 0
    while len(rows) < limit:
        want = min(max(limit - len(rows), 1) * (4 if function else 1) + 8, _CHUNK)
        entries = await _range(pool, queue, state, now, cursor, want)
        if not entries:
            return JobPage(rows, position, None, total, examined)
        if state == "failed":
            found = await _failed_rows(pool, queue, entries, deserializer)
        else:
            found = await _queue_rows(pool, queue, entries, deserializer, now)
            if state is not None:  # a held job in the due or deferred range belongs to in progress
                found = [r for r in found if r.status == state]
        by_id = {r.job_id: r for r in found if function is None or r.function == function}
        for offset, (job_id, _) in enumerate(entries):
            examined += 1
            if job_id in by_id:
                rows.append(by_id[job_id])
                if len(rows) == limit:
                    # a range that gave fewer entries than asked for has ended: no next page after its last one
                    ended = offset + 1 == len(entries) and len(entries) < want
                    return JobPage(rows, position, None if ended else cursor + offset + 1, total, examined)
        cursor += len(entries)
        if function is not None and examined >= SCAN_BUDGET:
            return JobPage(rows, position, cursor, total, examined, budget_hit=True)
    return JobPage(rows, position, cursor, total, examined)  # pragma: no cover - the loop returns


async def _held_page(
    pool: Any,
    summary: QueueSummary,
    function: str | None,
    position: int,
    limit: int,
    deserializer: Deserializer | None,
) -> JobPage:
    """The queue's running jobs (few: at most the workers' slots), read in one go and sliced."""
    ids = summary.held_ids
    scores = cast(list[float | None], await pool.zmscore(pool.key_layout.queue(summary.queue), ids)) if ids else []
    entries = [(i, int(s)) for i, s in zip(ids, scores, strict=True) if s is not None]
    rows = await _queue_rows(pool, summary.queue, entries, deserializer, summary.now_ms)
    rows = [r for r in rows if r.status == "in_progress" and function in (None, r.function)]
    rows.sort(key=lambda r: (r.enqueue_ms or 0, r.job_id))
    page = rows[position : position + limit]
    after = position + len(page)
    return JobPage(page, position, after if after < len(rows) else None, summary.in_progress, len(entries))


async def _complete_page(
    pool: Any,
    queue: str,
    ids: Sequence[str],
    function: str | None,
    position: int,
    limit: int,
    deserializer: Deserializer | None,
) -> JobPage:
    """Completed jobs among ``ids`` (newest first) whose result is still kept, from ``position``."""
    rows: list[JobRow] = []
    cursor = position
    while cursor < len(ids) and len(rows) < limit and cursor - position < SCAN_BUDGET:
        chunk = ids[cursor : cursor + min(_CHUNK, max(limit - len(rows), 1) * (4 if function else 1) + 8)]
        raws = cast(list[bytes | None], await pool.mget([pool.key_layout.result(queue, i) for i in chunk]))
        for offset, (job_id, raw) in enumerate(zip(chunk, raws, strict=True)):
            if raw is not None:
                row = result_row(job_id, raw, deserializer)
                if row.status == "complete" and function in (None, row.function):
                    row.queue = row.queue or queue
                    rows.append(row)
                    if len(rows) == limit:
                        after = cursor + offset + 1
                        return JobPage(rows, position, after if after < len(ids) else None, len(ids), after - position)
        cursor += len(chunk)
    more = cursor < len(ids)
    return JobPage(rows, position, cursor if more else None, len(ids), cursor - position, budget_hit=more)


async def search_jobs(
    pool: Any,
    queues: Sequence[str],
    text: str,
    *,
    deserializer: Deserializer | None = None,
    limit: int = SEARCH_LIMIT,
) -> list[JobRow]:
    """Jobs whose id is ``text``, or else contains it: waiting, running, or failed with a kept result.

    The exact id is one read and also finds completed jobs; a part of an id is looked for with ZSCAN in each
    queue and failed index (server side, ``limit`` matches at most).
    """
    text = text.strip()
    if not text:
        return []
    exact = await find_job(pool, text, queues, deserializer=deserializer)
    if exact is not None:
        return [exact]
    pattern = f"*{glob_escape(text)}*"
    found: dict[str, tuple[str, str, int]] = {}  # id -> (queue, where, score)
    for queue in queues:
        for key, where in ((pool.key_layout.queue(queue), "queue"), (pool.key_layout.failed(queue), "failed")):
            async for member, score in pool.zscan_iter(key, match=pattern, count=1000):
                job_id = member.decode()
                found.setdefault(job_id, (queue, where, int(score)))
                if len(found) >= limit:
                    break
            if len(found) >= limit:
                break
    rows: list[JobRow] = []
    now = timestamp_ms()
    for queue in queues:
        waiting = [(i, s) for i, (q, w, s) in found.items() if q == queue and w == "queue"]
        failed = [(i, s) for i, (q, w, s) in found.items() if q == queue and w == "failed"]
        rows += await _queue_rows(pool, queue, waiting, deserializer, now)
        rows += await _failed_rows(pool, queue, failed, deserializer)
    return rows


async def job_detail(
    pool: Any, job_id: str, queues: Sequence[str], *, deserializer: Deserializer | None = None
) -> JobDetail | None:
    """One job with the timers on its keys; None when nothing is stored about it."""
    row = await find_job(pool, job_id, queues, deserializer=deserializer)
    if row is None:
        return None
    layout, home = pool.key_layout, row.queue or queues[0]
    async with pool.pipeline(transaction=False) as pipe:
        pipe.zscore(layout.abort(home), job_id)
        pipe.pttl(layout.in_progress(home, job_id))
        pipe.pttl(layout.job(home, job_id))
        pipe.pttl(layout.result(home, job_id))
        abort, claim, job, result = await pipe.execute()
    # an abort older than this job was meant for an earlier job with the same id (arq #485)
    asked = None if abort is None or (row.enqueue_ms and abort < row.enqueue_ms) else int(abort)
    return JobDetail(
        row,
        abort_requested_ms=asked,
        claim_ttl_ms=int(claim) if claim >= 0 else None,
        job_ttl_ms=int(job) if job >= 0 else None,
        result_ttl_ms=int(result) if result >= 0 or result == -1 else None,
    )


async def cron_last_runs(pool: Any, jobs: Sequence[tuple[str, str]]) -> dict[str, int | None]:
    """Per cron job (name, queue), the latest occurrence a scheduler enqueued (unix ms), or None."""
    if not jobs:
        return {}
    values = cast(list[bytes | None], await pool.mget([pool.key_layout.cron_last(q, n) for n, q in jobs]))
    return {name: (int(v) if v is not None else None) for (name, _), v in zip(jobs, values, strict=True)}


def error_text(value: Any) -> str:
    """A failed job's result as one line: ``ValueError: boom``, or ``aborted (CancelledError)``."""
    if isinstance(value, Undecoded):  # an exception class of the application, named but not unpickled
        return f"{value.name}: {value.message} (not unpickled here)" if value.message else value.name
    if isinstance(value, asyncio.CancelledError):
        return "aborted (CancelledError)"
    if isinstance(value, BaseException):
        message = str(value)
        return f"{type(value).__name__}: {message}" if message else type(value).__name__
    return str(value)


def traceback_of(value: Any) -> str | None:
    """The traceback a runner worker attached to a failed job's exception, if any."""
    state = value.state if isinstance(value, Undecoded) else getattr(value, "__dict__", {})
    trace = state.get("runner_traceback") if isinstance(state, dict) else None
    return trace if isinstance(trace, str) and trace else None
