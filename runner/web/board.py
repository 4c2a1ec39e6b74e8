"""The dashboard's data: each page's content as one plain dict, read through the engine's browse and steering
functions. The HTML pages render these dicts and the JSON API returns them, so both show the same thing."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from runner.engine import browse, steering
from runner.engine.client import RunnerRedis
from runner.engine.connection import create_pool
from runner.engine.recent import RECENT_PER_QUEUE, RecentFinishes
from runner.engine.utils import timestamp_ms
from runner.errors import RedisUnavailable
from runner.web import views
from runner.web.errors import WebError
from runner.web.options import DashboardOptions, QueueInfo

logger = logging.getLogger("runner.web")

PAGE_SIZES = (20, 50, 100, 200)
CRON_RUNS = 5
REDIS_ERRORS = (RedisError, OSError, ssl.SSLError, RedisUnavailable)


class Board:
    """One dashboard's connection and reads; every method returns what one page or endpoint shows."""

    def __init__(self, options: DashboardOptions) -> None:
        self.options = options
        self._pool: RunnerRedis | None = None
        self._recent: RecentFinishes | None = None
        self._lock = asyncio.Lock()

    # -- the connection ----------------------------------------------------------------------------------------

    async def pool(self) -> RunnerRedis:
        """The pool, opened on first use (a mounted app gets no startup event) and again after Redis was down."""
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                settings = replace(self.options.redis_settings, conn_retries=0)
                try:
                    self._pool = await create_pool(
                        settings,
                        job_serializer=self.options.job_serializer,
                        job_deserializer=self.options.job_deserializer,
                        default_queue_name=self.options.queue_names[0],
                    )
                except RedisUnavailable as exc:
                    raise self.unavailable(exc) from None
                # the "complete" view: what runner workers announce as they finish jobs, from now on
                self._recent = RecentFinishes(self._pool, self.options.queue_names)
                self._recent.start()
            return self._pool

    async def close(self) -> None:
        if self._recent is not None:
            await self._recent.close()
            self._recent = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.aclose()

    def unavailable(self, exc: BaseException) -> WebError:
        where = self.options.redis_settings.describe()  # the password is masked
        return WebError(
            503,
            "Redis is not answering",
            f"Redis at {where} did not answer ({type(exc).__name__}). Nothing was changed; this page tries again "
            "by itself.",
        )

    def require_queue(self, name: str) -> QueueInfo:
        queue = self.options.queue(name)
        if queue is None:
            raise WebError(
                404,
                "No such queue",
                f'Queue "{name}" is not one of this dashboard\'s queues ({", ".join(self.options.queue_names)}).',
            )
        return queue

    # -- reads -------------------------------------------------------------------------------------------------

    async def summaries(self, names: list[str] | None = None) -> list[browse.QueueSummary]:
        queues = [self.require_queue(n) for n in names] if names else self.options.queues
        return await browse.queue_summaries(
            await self.pool(),
            [q.name for q in queues],
            window_ms={q.name: q.lease_ms for q in queues},
            health_check_keys={q.name: q.health_check_key for q in queues if q.health_check_key},
        )

    async def overview(self) -> dict[str, Any]:
        pool = await self.pool()
        summaries = await self.summaries()
        now = summaries[0].now_ms if summaries else timestamp_ms()
        queues = []
        for summary in summaries:
            minutes = await browse.minute_counts(pool, summary.queue, now_ms=now)
            data = views.summary_dict(summary, minutes)
            data["chart"] = views.chart(minutes)
            queues.append(data)
        return {"time": views.iso(now), "redis": self.options.redis_settings.describe(), "queues": queues}

    async def queue_view(
        self, name: str, *, state: str | None, function: str | None, position: int, limit: int
    ) -> dict[str, Any]:
        queue = self.require_queue(name)
        (summary,) = await self.summaries([queue.name])
        page = await browse.job_page(
            await self.pool(),
            summary,
            state=state,
            function=function,
            position=position,
            limit=limit,
            deserializer=self.options.job_deserializer,
            recent_ids=self._recent.ids(queue.name) if self._recent is not None else (),
        )
        return {
            "queue": views.summary_dict(summary),
            "state": state,
            "function": function,
            "limit": limit,
            "page_sizes": list(PAGE_SIZES),
            "recent_per_queue": RECENT_PER_QUEUE,
            "functions": list(queue.functions),
            "allow_abort_jobs": queue.allow_abort_jobs,
            **views.page_dict(page, summary.now_ms),
        }

    async def job(self, job_id: str, *, whole: bool = False) -> dict[str, Any]:
        detail = await self._detail(job_id)
        data = views.detail_dict(detail, timestamp_ms(), limit=None if whole else views.LONG)
        queue = self.options.queue(detail.row.queue) if detail.row.queue else None
        data["actions"] = self._actions(detail.row.status, queue)
        return data

    async def value(self, job_id: str, part: str) -> str:
        """The whole text of one value of a job (``args.0``, ``kwargs.name``, ``result``, ``traceback``)."""
        parts = views.value_parts((await self._detail(job_id)).row)
        if part not in parts:
            known = ", ".join(parts) or "none"
            raise WebError(404, "No such value", f'Job {job_id} has no value "{part}" (it has: {known}).')
        return parts[part]

    async def _detail(self, job_id: str) -> browse.JobDetail:
        detail = await browse.job_detail(
            await self.pool(), job_id, self.options.queue_names, deserializer=self.options.job_deserializer
        )
        if detail is None:
            raise WebError(
                404,
                "No such job",
                f"Nothing is stored about job {job_id} in {', '.join(self.options.queue_names)}: it may never have "
                "existed, or it finished and its result was not kept (keep_result = 0) or has expired.",
            )
        return detail

    def _actions(self, status: str, queue: QueueInfo | None) -> list[str]:
        if self.options.read_only or queue is None:
            return []
        if status == "failed":
            return ["retry", "delete"]
        if status == "complete":
            return ["delete"]
        if status in ("queued", "deferred"):
            return (["abort"] if queue.allow_abort_jobs else []) + ["delete"]
        if status == "in_progress" and queue.allow_abort_jobs:
            return ["abort"]
        return []

    async def search(self, text: str) -> dict[str, Any]:
        rows = await browse.search_jobs(
            await self.pool(), self.options.queue_names, text, deserializer=self.options.job_deserializer
        )
        now = timestamp_ms()
        return {"q": text, "jobs": [views.row_dict(r, now) for r in rows], "limit": browse.SEARCH_LIMIT}

    async def workers(self) -> dict[str, Any]:
        summaries = await self.summaries()
        now = summaries[0].now_ms if summaries else timestamp_ms()
        return {
            "time": views.iso(now),
            "queues": [
                {
                    "name": s.queue,
                    "workers": [views.worker_dict(w, now) for w in s.workers],
                    "arq_health": s.arq_health,
                }
                for s in summaries
            ],
        }

    async def cron(self) -> dict[str, Any]:
        entries = self.options.cron
        last = await browse.cron_last_runs(await self.pool(), [(c.name, c.queue) for c in entries])
        now = datetime.now(UTC)
        jobs = []
        for entry in entries:
            runs = entry.schedule.runs(now, CRON_RUNS, entry.zone)
            last_ms = last.get(entry.name)
            last_status = None
            if last_ms is not None:
                found = await browse.job_detail(
                    await self.pool(),
                    f"{entry.name}:{last_ms}",
                    [entry.queue],
                    deserializer=self.options.job_deserializer,
                )
                last_status = found.row.status if found else "not kept"
            jobs.append(
                {
                    "name": entry.name,
                    "function": entry.function,
                    "queue": entry.queue,
                    "schedule": entry.schedule.describe().removeprefix("cron "),
                    "zone": str(entry.zone) if entry.zone is not UTC else "UTC",
                    "next_runs": [
                        {
                            "local": run.astimezone(entry.zone).isoformat(),
                            "local_text": run.astimezone(entry.zone).strftime("%a %Y-%m-%d %H:%M:%S %Z"),
                            "utc": views.iso(run.timestamp() * 1000),
                        }
                        for run in runs
                    ],
                    "last_run": views.iso(last_ms),
                    "last_run_id": f"{entry.name}:{last_ms}" if last_ms is not None else None,
                    "last_status": last_status,
                }
            )
        return {"time": views.iso(now.timestamp() * 1000), "cron": jobs}

    # -- actions -----------------------------------------------------------------------------------------------

    def require_writable(self) -> None:
        if self.options.read_only:
            raise WebError(403, "Read-only dashboard", "This dashboard is read-only: it shows jobs but changes none.")

    async def _target(self, job_id: str) -> tuple[browse.JobDetail, QueueInfo]:
        self.require_writable()
        detail = await self._detail(job_id)
        queue = self.options.queue(detail.row.queue) if detail.row.queue else None
        if queue is None:
            raise WebError(
                409,
                "Queue unknown",
                f"Job {job_id}'s result names no queue of this dashboard, so it cannot be changed from here.",
            )
        return detail, queue

    async def retry(self, job_id: str) -> str:
        detail, queue = await self._target(job_id)
        if detail.row.status != "failed":
            raise WebError(409, "Not failed", f"Job {job_id} is {_state(detail.row.status)}; only failed jobs retry.")
        report = await steering.retry_failed(
            await self.pool(),
            queue.name,
            [job_id],
            serializer=self.options.job_serializer,
            deserializer=self.options.job_deserializer,
            expires_extra_ms=queue.expires_extra_ms,
        )
        if report.unreadable:
            raise WebError(409, "Cannot retry", f"Job {job_id}'s stored result cannot be decoded, so it cannot retry.")
        if not report.retried:
            raise WebError(409, "Changed meanwhile", f"Job {job_id} changed while it was retried; nothing was done.")
        return "retried"

    async def abort(self, job_id: str) -> str:
        detail, queue = await self._target(job_id)
        if detail.row.status not in ("queued", "deferred", "in_progress"):
            raise WebError(409, "Nothing to abort", f"Job {job_id} is {_state(detail.row.status)}; it cannot abort.")
        if not queue.allow_abort_jobs:
            raise WebError(
                409,
                "Aborts not allowed",
                f"Queue {queue.name}'s workers do not allow aborting jobs (allow_abort_jobs = false); "
                "a waiting job can be deleted instead.",
            )
        await steering.request_abort(await self.pool(), queue.name, job_id)
        return "abort_requested"

    async def delete(self, job_id: str) -> str:
        _, queue = await self._target(job_id)
        done = await steering.delete_job(await self.pool(), queue.name, job_id)
        if done is steering.Deleted.running:
            raise WebError(409, "Job is running", f"Job {job_id} is running; abort it first, then delete it.")
        if done is steering.Deleted.nothing:
            raise WebError(404, "Already gone", f"Job {job_id} was gone before it could be deleted.")
        return "deleted"

    async def retry_all(self, name: str, function: str | None = None) -> dict[str, int]:
        self.require_writable()
        queue = self.require_queue(name)
        report = await steering.retry_all_failed(
            await self.pool(),
            queue.name,
            function=function,
            serializer=self.options.job_serializer,
            deserializer=self.options.job_deserializer,
            expires_extra_ms=queue.expires_extra_ms,
        )
        return {"retried": report.retried, "skipped": report.skipped, "unreadable": report.unreadable}

    async def purge(self, name: str) -> dict[str, int]:
        self.require_writable()
        queue = self.require_queue(name)
        return {"deleted": await steering.purge_failed(await self.pool(), queue.name)}


def _state(status: str) -> str:
    return status.replace("_", " ")
