"""Engine objects as plain data: the JSON the API returns and the templates render, so both always agree.

Values a job carries (arguments, results, tracebacks) come from whoever enqueued it: they are turned into text
here with ``repr`` and truncated; the templates escape them, so a ``<script>`` in an argument is shown, never run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner.engine.browse import (
    JobDetail,
    JobPage,
    MinuteCount,
    QueueSummary,
    error_text,
    traceback_of,
)
from runner.engine.inspection import JobRow
from runner.engine.presence import WorkerPresence

SHORT = 120  # a call in a list of jobs
LONG = 2000  # one value on a job page; the whole value is a link away


def iso(unix_ms: int | float | None) -> str | None:
    """A wire time as ISO 8601 UTC with milliseconds: ``2024-06-01T08:00:00.123Z``."""
    if unix_ms is None:
        return None
    moment = datetime.fromtimestamp(unix_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def dt_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(round(moment.timestamp() * 1000))


def age(seconds: float | None) -> str:
    """A short duration: ``0.4s``, ``12s``, ``5m03s``, ``2h04m``, ``3d05h``."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def safe_repr(value: Any) -> str:
    """``repr(value)``; an object whose ``__repr__`` raises is described instead of breaking the page."""
    try:
        return repr(value)
    except Exception as exc:  # a user's class with a broken __repr__
        return f"<{type(value).__name__} whose repr() failed: {type(exc).__name__}>"


def clip(text: str, limit: int) -> dict[str, Any]:
    """``{"text", "truncated", "length"}``: the first ``limit`` characters and whether there was more."""
    return {
        "text": text if len(text) <= limit else text[:limit] + "…",
        "truncated": len(text) > limit,
        "length": len(text),
    }


def call_text(row: JobRow) -> str:
    if row.error is not None:
        return f"? (cannot decode: {row.error})"
    parts = [safe_repr(a) for a in row.args] + [f"{k}={safe_repr(v)}" for k, v in sorted(row.kwargs.items())]
    text = f"{row.function}({', '.join(parts)})"
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def row_dict(row: JobRow, now_ms: int) -> dict[str, Any]:
    """One job in a list: enough to show a table row and link to the job."""
    result = row.result
    data: dict[str, Any] = {
        "id": row.job_id,
        "queue": row.queue,
        "status": row.status,
        "function": row.function,
        "call": call_text(row),
        "try": row.job_try,
        "enqueued": iso(row.enqueue_ms),
        "due": iso(row.score) if row.score is not None and row.status in ("queued", "deferred") else None,
        "due_in_s": (row.score - now_ms) / 1000 if row.score is not None and row.status == "deferred" else None,
        "waited_s": (now_ms - row.score) / 1000 if row.score is not None and row.status == "queued" else None,
        "finished": iso(dt_ms(result.finish_time)) if result else None,
        "error": error_text(result.result) if result is not None and not result.success else None,
        "problem": row.error,
    }
    if data["error"] is not None and len(data["error"]) > SHORT:
        data["error"] = data["error"][: SHORT - 1] + "…"
    return data


def value_parts(row: JobRow) -> dict[str, str]:
    """Every long value of a job as full text, by part name: ``args.0``, ``kwargs.name``, ``result``, ``traceback``."""
    parts = {f"args.{i}": safe_repr(a) for i, a in enumerate(row.args)}
    parts.update({f"kwargs.{k}": safe_repr(v) for k, v in sorted(row.kwargs.items())})
    result = row.result
    if result is not None:
        if result.success:
            parts["result"] = safe_repr(result.result)
        else:
            parts["result"] = error_text(result.result)
            trace = traceback_of(result.result)
            if trace:
                parts["traceback"] = trace
    return parts


def detail_dict(detail: JobDetail, now_ms: int, *, limit: int | None = LONG) -> dict[str, Any]:
    """One job in full (values clipped to ``limit`` characters; None: whole)."""
    row = detail.row
    data = row_dict(row, now_ms)
    data["call"] = None if row.error else f"{row.function}(…)"

    def clipped(text: str) -> dict[str, Any]:
        return clip(text, limit or len(text))

    parts = value_parts(row)
    data["args"] = [clipped(parts[f"args.{i}"]) | {"part": f"args.{i}"} for i in range(len(row.args))]
    data["kwargs"] = [clipped(parts[f"kwargs.{k}"]) | {"name": k, "part": f"kwargs.{k}"} for k in sorted(row.kwargs)]
    result = row.result
    data["success"] = None if result is None else bool(result.success)
    data["result"] = clipped(parts["result"]) | {"part": "result"} if "result" in parts else None
    data["traceback"] = clipped(parts["traceback"]) | {"part": "traceback"} if "traceback" in parts else None
    data["started"] = iso(dt_ms(result.start_time)) if result else None
    data["duration_s"] = (result.finish_time - result.start_time).total_seconds() if result else None
    data["abort_requested"] = iso(detail.abort_requested_ms)
    data["claim_expires_in_s"] = None if detail.claim_ttl_ms is None else detail.claim_ttl_ms / 1000
    data["job_expires_in_s"] = None if detail.job_ttl_ms is None else detail.job_ttl_ms / 1000
    data["result_kept_forever"] = detail.result_ttl_ms == -1
    data["result_expires_in_s"] = (
        detail.result_ttl_ms / 1000 if detail.result_ttl_ms is not None and detail.result_ttl_ms >= 0 else None
    )
    return data


def summary_dict(summary: QueueSummary, minutes: list[MinuteCount] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": summary.queue,
        "queued": summary.queued,
        "deferred": summary.deferred,
        "in_progress": summary.in_progress,
        "failed": summary.failed,
        "counts_exact": summary.exact,
        "oldest_due_age_s": summary.oldest_due_age_s,
        "workers_alive": summary.workers_alive,
        "arq_health": summary.arq_health,
    }
    if minutes is not None:
        data["per_minute"] = [
            {"minute": iso(m.minute_ms), "complete": m.complete, "failed": m.failed, "retried": m.retried}
            for m in minutes
        ]
        data["complete_last_hour"] = sum(m.complete for m in minutes)
        data["failed_last_hour"] = sum(m.failed for m in minutes)
    return data


def page_dict(page: JobPage, now_ms: int) -> dict[str, Any]:
    return {
        "jobs": [row_dict(r, now_ms) for r in page.rows],
        "position": page.position,
        "next_position": page.next_position,
        "total": page.total,
        "examined": page.examined,
        "budget_hit": page.budget_hit,
    }


def worker_dict(worker: WorkerPresence, now_ms: int) -> dict[str, Any]:
    data = worker.as_dict()
    data.pop("started_ms")
    data.pop("updated_ms")
    data["started"] = iso(worker.started_ms)
    data["seen"] = iso(worker.updated_ms)
    data["seen_ago_s"] = max(now_ms - worker.updated_ms, 0) / 1000
    data["uptime_s"] = worker.uptime_s(now_ms)
    return data


def chart(minutes: list[MinuteCount], width: int = 600, height: int = 80) -> dict[str, Any]:
    """Bars for an inline SVG: completions stacked on failures, one bar per minute, oldest on the left."""
    top = max((m.complete + m.failed for m in minutes), default=0)
    step = width / max(len(minutes), 1)
    bars = []
    for index, m in enumerate(minutes):
        scale = height / top if top else 0
        failed_h = m.failed * scale
        complete_h = m.complete * scale
        bars.append(
            {
                "x": round(index * step, 2),
                "w": round(max(step - 1, 1), 2),
                "complete_y": round(height - complete_h - failed_h, 2),
                "complete_h": round(complete_h, 2),
                "failed_y": round(height - failed_h, 2),
                "failed_h": round(failed_h, 2),
                "label": f"{(iso(m.minute_ms) or '')[11:16]} UTC: {m.complete} complete, {m.failed} failed",
            }
        )
    return {"bars": bars, "top": top, "width": width, "height": height}
