"""Jobs as stored on the wire, and ``Job``, the handle a producer holds."""

from __future__ import annotations

import asyncio
import logging
import pickle
import warnings
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, cast

from runner.engine import keys
from runner.engine.flow import PARK_MS
from runner.engine.keys import KeyLayout
from runner.engine.pool import JobsClient
from runner.engine.safe_pickle import undecoded_in
from runner.engine.serializers import Deserializer, Serializer, reading_deserializer
from runner.engine.utils import ms_to_datetime, timestamp_ms
from runner.errors import DeserializationError, ResultNotFound, SerializationError, UnsafePayload

logger = logging.getLogger("runner.jobs")

# what a result record written by arq before 0.26 (no queue name, no id) reads as, in arq and here
UNKNOWN = "<unknown>"


class JobStatus(str, Enum):  # noqa: UP042 - arq compares statuses with plain strings
    """Where a job is in its life, as ``Job.status()`` reports it."""

    deferred = "deferred"
    queued = "queued"
    in_progress = "in_progress"
    complete = "complete"
    not_found = "not_found"


@dataclass
class JobDef:
    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    job_try: int | None
    enqueue_time: datetime
    score: int | None
    job_id: str | None

    def __post_init__(self) -> None:
        if isinstance(self.score, float):
            self.score = int(self.score)


@dataclass
class JobResult(JobDef):
    success: bool
    result: Any
    start_time: datetime
    finish_time: datetime
    queue_name: str | None


class Job:
    """A handle on one job: its status, its result, and a way to abort it."""

    __slots__ = ("job_id", "_redis", "_queue_name", "_deserializer")

    def __init__(
        self,
        job_id: str,
        redis: JobsClient,
        _queue_name: str = keys.default_queue_name,
        _deserializer: Deserializer | None = None,
    ) -> None:
        self.job_id = job_id
        self._redis = redis
        # a queue split over shards (RedisSettings.shards): the job lives on the shard its id hashes to
        shard_queue = getattr(redis, "shard_queue", None)
        self._queue_name = _queue_name if shard_queue is None else shard_queue(_queue_name, job_id)
        self._deserializer = _deserializer

    async def result(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - arq's signature
        *,
        poll_delay: float = 0.5,
        pole_delay: float | None = None,
    ) -> Any:
        """Wait for the job's result and return it, or raise the exception the job raised.

        A runner worker announces each finish, so this returns within milliseconds of it; ``poll_delay`` is the
        fallback check for jobs run by arq workers. ``pole_delay`` is arq's deprecated spelling of it.

        A pickled result is decoded without running code from Redis: plain data, dates, ``Decimal``, ``UUID``
        and builtin exceptions as they are, anything else only from the modules the pool's ``pickle_allow`` names,
        or when the queue's payloads are signed.

        Raises:
            ResultNotFound: the job has no result and is not queued (keep_result may be 0).
            TimeoutError: ``timeout`` seconds passed first.
            UnsafePayload: the result holds a class or function that is not allowed (the message names it).
        """
        if pole_delay is not None:
            warnings.warn(
                'Job.result(pole_delay=...) is deprecated; spell it "poll_delay".', DeprecationWarning, stacklevel=2
            )
            poll_delay = pole_delay
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        waiter = self._redis.result_waiter()
        while True:
            future = await waiter.register(self._queue_name, self.job_id)
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.get(self._keys.result(self._queue_name, self.job_id))
                    pipe.zscore(self._keys.queue(self._queue_name), self.job_id)
                    raw, score = await pipe.execute()
                if raw:
                    info = deserialize_result(raw, deserializer=self._reader())
                    self._refuse_undecoded(info.result)
                    if info.success:
                        return info.result
                    if isinstance(info.result, BaseException):
                        raise info.result
                    raise SerializationError(str(info.result))
                if score is None:
                    # arq's words: code that matches on them keeps working
                    raise ResultNotFound(
                        "Not waiting for job result because the job is not in queue. "
                        "Is the worker function configured to keep result?"
                    )
                wait = poll_delay
                if deadline is not None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise TimeoutError(f"Job {self.job_id} did not finish within {timeout}s.")
                    wait = min(wait, remaining)
                try:
                    await asyncio.wait_for(asyncio.shield(future), wait)
                except TimeoutError:
                    pass
            finally:
                waiter.unregister(self.job_id, future)

    def _reader(self) -> Deserializer:
        """Plain pickle is read without running code from Redis (see safe_pickle); other serializers as they are."""
        return reading_deserializer(self._deserializer or self._redis.job_deserializer, self._redis.pickle_allow)

    def _refuse_undecoded(self, value: Any) -> None:
        found = next(undecoded_in(value), None)
        if found is not None:
            raise UnsafePayload(
                f"The result of job {self.job_id} holds {found.name}, which runner does not unpickle by default: "
                f"that would import and call code named by data in Redis. Allow it with create_pool(..., "
                f"pickle_allow=[{found.module!r}]), or sign the queue's payloads (sign_serializer)."
            )

    async def info(self) -> JobDef | None:
        """Everything known about the job, with its result when there is one; does not wait."""
        info: JobDef | None = await self.result_info()
        if info is None:
            raw = cast(bytes | None, await self._redis.get(self._keys.job(self._queue_name, self.job_id)))
            if raw:
                info = deserialize_job(raw, deserializer=self._reader())
        if info is not None:
            score = await self._redis.zscore(self._keys.queue(self._queue_name), self.job_id)
            info.score = None if score is None else int(score)
            info.job_id = self.job_id
        return info

    async def result_info(self) -> JobResult | None:
        """The stored result, success or failure, without raising the job's exception; None when there is none.

        With plain pickle, a class or function the result names beyond plain data (and the pool's ``pickle_allow``)
        is not imported: it is an ``Undecoded`` value in its place.
        """
        raw = cast(bytes | None, await self._redis.get(self._keys.result(self._queue_name, self.job_id)))
        return deserialize_result(raw, deserializer=self._reader()) if raw else None

    async def status(self) -> JobStatus:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.exists(self._keys.result(self._queue_name, self.job_id))
            pipe.exists(self._keys.in_progress(self._queue_name, self.job_id))
            pipe.zscore(self._keys.queue(self._queue_name), self.job_id)
            is_complete, is_in_progress, score = await pipe.execute()
        if is_complete:
            return JobStatus.complete
        if is_in_progress:
            return JobStatus.in_progress
        if score is not None:
            if score >= PARK_MS:  # a flow job waiting in its lanes (runner/engine/flow.py)
                score -= PARK_MS
            return JobStatus.deferred if score > timestamp_ms() else JobStatus.queued
        return JobStatus.not_found

    async def request_abort(self) -> None:
        """Ask the workers to abort the job, without waiting for the outcome (``abort`` waits)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zscore(self._keys.queue(self._queue_name), self.job_id)
            pipe.exists(self._keys.in_progress(self._queue_name, self.job_id))
            score, running = await pipe.execute()
        async with self._redis.pipeline(transaction=True) as pipe:
            if score is not None and score > timestamp_ms() and not running:
                # a deferred job is brought forward so a worker sees the abort now
                pipe.zadd(self._keys.queue(self._queue_name), {self.job_id: 1}, xx=True)
                pipe.rpush(self._keys.wake(self._queue_name), b"1")
            pipe.zadd(self._keys.abort(self._queue_name), {self.job_id: timestamp_ms()})
            await pipe.execute()

    async def abort(self, *, timeout: float | None = None, poll_delay: float = 0.5) -> bool:  # noqa: ASYNC109
        """Ask the workers to abort the job and wait for the outcome.

        A queued or deferred job fails with ``CancelledError`` before it starts; a running one is cancelled
        (the worker needs ``allow_abort_jobs``).

        Returns:
            True when the job ended aborted, False when it finished anyway or its outcome is unknown.
        """
        await self.request_abort()
        try:
            await self.result(timeout=timeout, poll_delay=poll_delay)
        except asyncio.CancelledError:
            return True
        except ResultNotFound:
            return False
        return False

    @property
    def _keys(self) -> KeyLayout:
        return self._redis.key_layout

    def __repr__(self) -> str:
        return f"<runner job {self.job_id}>"


def serialize_job(
    function_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    job_try: int | None,
    enqueue_time_ms: int,
    *,
    serializer: Serializer | None = None,
) -> bytes:
    """A job payload, as arq writes it.

    Raises:
        SerializationError: the serializer refused the arguments (the cause is chained).
    """
    data = {"t": job_try, "f": function_name, "a": args, "k": kwargs, "et": enqueue_time_ms}
    try:
        return (serializer or pickle.dumps)(data)
    except Exception as exc:
        raise SerializationError(f'unable to serialize job "{function_name}"') from exc


def serialize_result(
    function: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    job_try: int,
    enqueue_time_ms: int,
    success: bool,
    result: Any,
    start_ms: int,
    finished_ms: int,
    ref: str,
    queue_name: str,
    job_id: str,
    *,
    serializer: Serializer | None = None,
) -> bytes | None:
    """The result record arq reads (arq's signature; ``ref`` names the job in log lines).

    A result that cannot be serialized is stored as a failure that says ``unable to serialize result``; None when
    even that fails.
    """
    data = {
        "t": job_try,
        "f": function,
        "a": args,
        "k": kwargs,
        "et": enqueue_time_ms,
        "s": success,
        "r": result,
        "st": start_ms,
        "ft": finished_ms,
        "q": queue_name,
        "id": job_id,
    }
    dumps = serializer or pickle.dumps
    try:
        return dumps(data)
    except Exception:
        logger.warning("error serializing result of %s", ref, exc_info=True)
    # the plain string is what arq stores, so arq clients can read it too
    data.update(s=False, r="unable to serialize result")
    try:
        return dumps(data)
    except Exception:
        pass
    # even the arguments will not serialize with this serializer: keep the bare facts
    data.update(a=(), k={})
    try:
        return dumps(data)
    except Exception:
        logger.critical("error serializing result of %s even after replacing result", ref, exc_info=True)
    return None


def _decode(r: bytes, deserializer: Deserializer | None, what: str) -> dict[str, Any]:
    try:
        data = (deserializer or pickle.loads)(r)
    except DeserializationError as exc:  # the deserializer's own sentence (a signature check) says it all
        raise DeserializationError(f"Unable to deserialize {what}: {exc}") from exc
    except Exception as exc:
        raise DeserializationError(f"unable to deserialize {what}") from exc
    if not isinstance(data, dict):
        raise DeserializationError(f"unable to deserialize {what}: expected a mapping, got {type(data).__name__}")
    return data


def deserialize_job(r: bytes, *, deserializer: Deserializer | None = None) -> JobDef:
    """A job payload as a ``JobDef`` (no score or id: those are not in the payload).

    Raises:
        DeserializationError: the payload cannot be decoded or lacks a field (the cause is chained).
    """
    data = _decode(r, deserializer, "job")
    try:
        return JobDef(
            function=data["f"],
            args=tuple(data["a"]),
            kwargs=dict(data["k"]),
            job_try=data.get("t"),
            enqueue_time=ms_to_datetime(data["et"]),
            score=None,
            job_id=None,
        )
    except (KeyError, TypeError) as exc:
        raise DeserializationError("unable to deserialize job") from exc


def deserialize_job_raw(
    r: bytes, *, deserializer: Deserializer | None = None
) -> tuple[str, tuple[Any, ...], dict[str, Any], int | None, int]:
    """A job payload as ``(function, args, kwargs, job_try, enqueue_time_ms)``.

    Raises:
        DeserializationError: the payload cannot be decoded or lacks a field (the cause is chained).
    """
    data = _decode(r, deserializer, "job")
    try:
        return data["f"], tuple(data["a"]), dict(data["k"]), data.get("t"), int(data["et"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DeserializationError("unable to deserialize job") from exc


def deserialize_result(r: bytes, *, deserializer: Deserializer | None = None) -> JobResult:
    """A result record as a ``JobResult``; a record without a queue name or id (old arq) reads as ``<unknown>``.

    Raises:
        DeserializationError: the record cannot be decoded or lacks a field (the cause is chained).
    """
    data = _decode(r, deserializer, "job result")
    try:
        return JobResult(
            job_id=data.get("id", UNKNOWN),
            function=data["f"],
            args=tuple(data["a"]),
            kwargs=dict(data["k"]),
            job_try=data["t"],
            enqueue_time=ms_to_datetime(data["et"]),
            score=None,
            success=data["s"],
            result=data["r"],
            start_time=ms_to_datetime(data["st"]),
            finish_time=ms_to_datetime(data["ft"]),
            queue_name=data.get("q", UNKNOWN),
        )
    except (KeyError, TypeError) as exc:
        raise DeserializationError("unable to deserialize job result") from exc
