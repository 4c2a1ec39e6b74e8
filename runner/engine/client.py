"""The producer side: ``RunnerRedis`` enqueues jobs and wakes idle workers."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import uuid4

from runner.engine import scripts
from runner.engine.direct import DirectScript
from runner.engine.flow import PARK_MS, FlowLimits, SpecCache, check_group, check_priority, flow_keys
from runner.engine.job import Job, JobDef, JobResult, deserialize_job, deserialize_result, serialize_job
from runner.engine.pool import JobsClient, JobsRedis
from runner.engine.utils import SecondsTimedelta, timestamp_ms, to_ms, to_seconds, to_unix_ms
from runner.errors import InvalidArgument

logger = logging.getLogger("runner.connections")


@dataclass
class JobSpec:
    """One job for ``enqueue_many``: the same options ``enqueue_job`` takes, as fields."""

    function: str
    args: Sequence[Any] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    queue_name: str | None = None
    defer_until: datetime | None = None
    defer_by: SecondsTimedelta | None = None
    expires: SecondsTimedelta | None = None
    job_try: int | None = None
    unique_for: SecondsTimedelta | None = None
    priority: int | None = None
    group: str | None = None
    throttle: SecondsTimedelta | None = None
    debounce: SecondsTimedelta | None = None
    dedup_key: str | None = None


class Producer(JobsClient):
    """The enqueue calls, on a single server's client (``RunnerRedis``) or a cluster's (``RunnerRedisCluster``).

    Every enqueue is one round trip: a server-side script checks the id is free, writes the job and its score,
    and wakes one idle worker.
    """

    _enqueue_script: Any = None
    _enqueue_flow_script: Any = None
    _flow_spec_cache: SpecCache | None = None

    async def enqueue_job(
        self,
        function: str,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: datetime | None = None,
        _defer_by: SecondsTimedelta | None = None,
        _expires: SecondsTimedelta | None = None,
        _job_try: int | None = None,
        _unique_for: SecondsTimedelta | None = None,
        _priority: int | None = None,
        _group: str | None = None,
        _throttle: SecondsTimedelta | None = None,
        _debounce: SecondsTimedelta | None = None,
        _dedup_key: str | None = None,
        **kwargs: Any,
    ) -> Job | None:
        """Enqueue ``function(ctx, *args, **kwargs)``; options start with ``_`` so they never clash with kwargs.

        Args:
            function: the name the worker knows the function by.
            _job_id: a custom id; while a job with this id is queued, running, or has a kept result,
                enqueueing it again does nothing and returns None.
            _queue_name: the queue (default: the pool's ``default_queue_name``).
            _defer_until: run no earlier than this time (a naive datetime is local time).
            _defer_by: run no earlier than this long from now. Not with ``_defer_until``.
            _expires: drop the job if it has not started by then (default: its delay plus ``expires_extra_ms``).
            _job_try: the try number the job starts at.
            _unique_for: hold this id for this long after this enqueue, even once the job has finished: every
                runner enqueue of the id in that window is refused, with ``_unique_for`` or without (an idempotency
                window; runner-only: arq's producers know no marker, and ``runner jobs retry`` puts a failed job
                back under its id regardless).
            _priority: among due jobs a higher priority runs first (-1000..1000; default the function's ``priority``,
                else 0, a plain job's). Runner-only, like every option below (docs/flow-control.md).
            _group: the fairness key (a tenant, a user): due jobs of different groups are taken in turns, and the
                function's ``group_concurrency`` / ``group_rate_limit`` hold per group.
            _throttle: refuse every enqueue with the same dedup key for this long after this one (returns None).
            _debounce: run once this long after the last enqueue with the same dedup key: a later enqueue in the
                window replaces the waiting job's arguments and restarts the window (returns that job).
            _dedup_key: what makes two enqueues "the same" for ``_throttle`` / ``_debounce``; default the job id.

        Returns:
            The ``Job``, or None when the id was taken by another job. A call whose reply was lost is sent again
            by redis-py; it still returns the ``Job`` its first attempt wrote, never None.

        Raises:
            InvalidArgument: both ``_defer_until`` and ``_defer_by`` were given (a ValueError and, as in arq, a
                RuntimeError), ``_expires`` is negative, or a flow-control option is out of range.
            SerializationError: the arguments cannot be serialized; nothing was written.
        """
        spec = JobSpec(
            function,
            args,
            kwargs,
            _job_id,
            _queue_name,
            _defer_until,
            _defer_by,
            _expires,
            _job_try,
            _unique_for,
            _priority,
            _group,
            _throttle,
            _debounce,
            _dedup_key,
        )
        jobs = await self.enqueue_many([spec])
        return jobs[0]

    async def enqueue_many(self, jobs: Iterable[JobSpec]) -> list[Job | None]:
        """Enqueue many jobs in one round trip per queue; returns a ``Job`` or None (id taken) for each, in order."""
        now = timestamp_ms()
        by_queue: dict[str, list[tuple[int, list[Any]]]] = {}
        flow_jobs: dict[str, list[tuple[int, list[Any], JobSpec]]] = {}
        for index, spec in enumerate(jobs):
            values = self._job_args(spec, now)
            queue_name = self._shard_for(spec, values[0])
            if await self._takes_flow_path(spec, queue_name):
                flow_jobs.setdefault(queue_name, []).append((index, values, spec))
            else:
                by_queue.setdefault(queue_name, []).append((index, values))
        results: dict[int, Job | None] = {}
        for queue_name, flow_entries in flow_jobs.items():
            results.update(await self._enqueue_flow(queue_name, flow_entries, now))
        layout = self.key_layout
        marker_ms = self._enqueue_marker_ms()
        for queue_name, entries in by_queue.items():
            # redis-py sends the call again when its reply is lost; the token lets the script see its own first
            # attempt, so jobs that attempt wrote are reported written, not refused
            script_keys = [
                layout.queue(queue_name),
                layout.wake(queue_name),
                layout.abort(queue_name),
                layout.enqueued(queue_name, uuid4().hex),
            ]
            argv: list[Any] = [marker_ms]
            job_prefix, result_prefix = layout.job_prefix(queue_name), layout.result_prefix(queue_name)
            unique_prefix = layout.unique_prefix(queue_name)
            for _, values in entries:
                job_id = values[0]
                script_keys += [job_prefix + job_id, result_prefix + job_id, unique_prefix + job_id]
                argv.extend(values)
            written = await self._enqueue_script(keys=script_keys, args=argv)
            for (index, values), ok in zip(entries, written, strict=True):
                results[index] = (
                    Job(values[0], self, _queue_name=queue_name, _deserializer=self.job_deserializer) if ok else None
                )
        return [results[i] for i in range(len(results))]

    def _shard_for(self, spec: JobSpec, job_id: str) -> str:
        """The queue a job goes to: on a queue split over shards, the shard its id picks, so an id is only ever
        looked for (and refused when taken) on one shard."""
        queue_name = spec.queue_name or self.default_queue_name
        if spec.dedup_key is not None and self.queue_shards.get(queue_name, 1) > 1:
            raise InvalidArgument(
                f'_dedup_key cannot be used on queue "{queue_name}", which is split over shards (the job id picks '
                "the shard, and a key of its own could be on another): let the _job_id be the key"
            )
        return self.shard_queue(queue_name, job_id)

    async def _takes_flow_path(self, spec: JobSpec, queue_name: str) -> bool:
        """A job takes the flow path when it asks for a flow option or its function has flow settings."""
        check_priority(spec.priority)
        check_group(spec.group)
        if spec.throttle is not None and spec.debounce is not None:
            raise InvalidArgument("use either '_throttle' or '_debounce', not both")
        for name, window in (("_throttle", spec.throttle), ("_debounce", spec.debounce)):
            if window is not None and (to_ms(window) or 0) <= 0:
                raise InvalidArgument(f"{name} must be a positive duration (got {to_seconds(window):g}s)")
        if (spec.throttle is not None or spec.debounce is not None) and not (spec.job_id or spec.dedup_key):
            raise InvalidArgument("_throttle and _debounce need a _job_id or a _dedup_key to know a repeat by")
        if spec.priority or spec.group or spec.throttle is not None or spec.debounce is not None:
            return True
        return spec.function in await self.flow_specs(queue_name)

    async def flow_specs(self, queue_name: str) -> dict[str, FlowLimits]:
        """The flow settings the queue's workers published (runner/engine/flow.py), read again after a second."""
        if self._flow_spec_cache is None:
            self._flow_spec_cache = SpecCache()
        found = self._flow_spec_cache.fresh(queue_name)
        if found is None:
            raw = await self.hgetall(self.key_layout.flow(queue_name, "spec"))
            found = self._flow_spec_cache.store(queue_name, raw)
        return found

    async def _enqueue_flow(
        self, queue_name: str, entries: list[tuple[int, list[Any], JobSpec]], now: int
    ) -> dict[int, Job | None]:
        """One ``enqueue_flow.lua`` call for the queue's jobs that take the flow path."""
        layout = self.key_layout
        specs = await self.flow_specs(queue_name)
        script_keys = [
            layout.queue(queue_name),
            layout.wake(queue_name),
            layout.abort(queue_name),
            layout.enqueued(queue_name, uuid4().hex),
            layout.job_prefix(queue_name),
            layout.in_progress_prefix(queue_name),
            *flow_keys(layout, queue_name),
        ]
        argv: list[Any] = [self._enqueue_marker_ms(), now]
        for _, values, spec in entries:
            job_id = values[0]
            limits = specs.get(spec.function)
            default = FlowLimits() if limits is None else limits
            flow = bool(spec.priority or spec.group or default.active)
            priority = spec.priority if spec.priority is not None else default.priority
            if spec.throttle is not None:
                dedup = f"t{to_ms(spec.throttle)}"
            elif spec.debounce is not None:
                dedup = f"d{to_ms(spec.debounce)}"
            else:
                dedup = ""
            dedup_key = spec.dedup_key or job_id
            script_keys += [
                layout.job(queue_name, job_id),
                layout.result(queue_name, job_id),
                layout.unique(queue_name, job_id),
                layout.dedup(queue_name, dedup_key),
            ]
            argv += [*values, int(flow), priority, spec.function, spec.group or "", dedup]
        written = await self._enqueue_flow_script(keys=script_keys, args=argv)
        results: dict[int, Job | None] = {}
        for (index, _, _), answer in zip(entries, written, strict=True):
            job_id = answer.decode() if isinstance(answer, bytes) else str(answer)
            results[index] = (
                Job(job_id, self, _queue_name=queue_name, _deserializer=self.job_deserializer) if job_id else None
            )
        return results

    def _enqueue_marker_ms(self) -> int:
        return enqueue_marker_ms(self.reply_timeout_s())

    def _job_args(self, spec: JobSpec, now: int) -> list[Any]:
        if spec.defer_until is not None and spec.defer_by is not None:
            raise InvalidArgument("use either 'defer_until' or 'defer_by' or neither, not both")
        expires = to_ms(spec.expires)
        if expires is not None and expires < 0:
            # a negative lifetime would store a payload that vanishes at once while the job still shows "queued"
            raise InvalidArgument(f"_expires must be a positive duration (got {to_seconds(spec.expires):g}s)")
        job_id = spec.job_id or uuid4().hex
        if spec.defer_until is not None:
            score = to_unix_ms(spec.defer_until)
        elif spec.defer_by is not None:
            score = now + (to_ms(spec.defer_by) or 0)
        else:
            score = now
        # a score in the past (a producer's clock behind, a late _defer_until) is due now, not already expired
        expires_ms = expires or (max(score - now, 0) + self.expires_extra_ms)
        payload = serialize_job(
            spec.function, tuple(spec.args), spec.kwargs, spec.job_try, now, serializer=self.job_serializer
        )
        unique_ms = to_ms(spec.unique_for) or 0
        return [job_id, payload, score, max(expires_ms, 1), max(unique_ms, 0)]

    async def queued_jobs(self, *, queue_name: str | None = None) -> list[JobDef]:
        """Every job in the queue (queued, deferred or running), with its score; over every shard of a queue split
        over shards, shard by shard.

        Pickled payloads are decoded without running code from Redis: an argument of a class beyond plain data
        (and ``pickle_allow``) is an ``Undecoded`` value naming it.
        """
        found = []
        for shard in self.shard_queues(queue_name or self.default_queue_name):
            found += await self._queued_on(shard)
        return found

    async def _queued_on(self, queue_name: str) -> list[JobDef]:
        layout = self.key_layout
        entries = cast(list[tuple[bytes, float]], await self.zrange(layout.queue(queue_name), 0, -1, withscores=True))
        if not entries:
            return []
        async with self.pipeline(transaction=False) as pipe:
            for job_id, _ in entries:
                pipe.get(layout.job(queue_name, job_id.decode()))
            payloads: list[bytes | None] = await pipe.execute()
        found = []
        reader = self.reading_deserializer()
        for (job_id, score), payload in zip(entries, payloads, strict=True):
            if payload:
                job_def = deserialize_job(payload, deserializer=reader)
                job_def.score = int(score) - (PARK_MS if score >= PARK_MS else 0)  # a waiting flow job
                job_def.job_id = job_id.decode()
                found.append(job_def)
        return found

    async def all_job_results(self) -> list[JobResult]:
        """Every stored result (of every shard of a queue split over shards), oldest enqueue first."""
        results = []
        reader = self.reading_deserializer()
        for shard in self.shard_queues(self.default_queue_name):
            prefix = self.key_layout.result_prefix(shard)
            result_keys = [k async for k in self.scan_iter(match=prefix + "*", count=1000)]
            if not result_keys:
                continue
            payloads = cast(list[bytes | None], await self.mget(result_keys))
            for key, payload in zip(result_keys, payloads, strict=True):
                if payload:  # expired between the scan and the read
                    result = deserialize_result(payload, deserializer=reader)
                    result.job_id = key.decode()[len(prefix) :]  # as arq: the key names the job
                    results.append(result)
        return sorted(results, key=lambda r: r.enqueue_time)


class RunnerRedis(Producer, JobsRedis):  # type: ignore[misc]  # as JobsRedis
    """A ``redis.asyncio.Redis`` that also enqueues jobs; made by ``create_pool`` (``cluster.RunnerRedisCluster`` is
    its twin on a Redis Cluster)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # straight on a pool connection (direct.py): an enqueue is one script call, most of a producer's work
        self._enqueue_script = DirectScript(self, scripts.ENQUEUE)
        self._enqueue_flow_script = DirectScript(self, scripts.ENQUEUE_FLOW)


def enqueue_marker_ms(socket_timeout: float | None) -> int:
    """How long an enqueue call's answer is kept for a resend of the same call: the socket timeout of each of its
    three attempts, and 5 s more (20 s with the default 5 s timeout; a pool without one counts 10 s)."""
    return int((3 * (socket_timeout or 10) + 5) * 1000)


# arq's name for the same thing, so moving from arq is an import change
ArqRedis = RunnerRedis
