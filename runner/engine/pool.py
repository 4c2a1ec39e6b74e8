"""``JobsRedis``: a ``redis.asyncio.Redis`` that knows the queue's layout, serializers and result waiter.

It is what a ``Job`` handle needs of its client, and the base of ``RunnerRedis`` (client.py), which adds the
enqueue calls; with the two apart, job.py and client.py need not import each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from redis.asyncio import ConnectionPool, Redis

from runner.engine import keys
from runner.engine.keys import ARQ_LAYOUT, KeyLayout, shard_index, shard_queues
from runner.engine.protocol import finished_ids
from runner.engine.serializers import Deserializer, Serializer, reading_deserializer

logger = logging.getLogger("runner.client")


if TYPE_CHECKING:
    _Base = Redis  # the mixin's methods call redis-py's; both clients offer the ones used here
else:
    _Base = object


class JobsClient(_Base):
    """What a runner client adds to redis-py's: the queue's layout, serializers and the result waiter.

    ``JobsRedis`` puts it on ``redis.asyncio.Redis``; the cluster client (cluster.py) on ``RedisCluster``.
    """

    is_cluster = False  # (redis-py's clients have a cluster() command)

    def configure(
        self,
        *,
        job_serializer: Serializer | None,
        job_deserializer: Deserializer | None,
        default_queue_name: str,
        expires_extra_ms: int,
        key_layout: KeyLayout = ARQ_LAYOUT,
        pickle_allow: Sequence[str] = (),
        queue_shards: Mapping[str, int] | None = None,
    ) -> None:
        self.job_serializer = job_serializer
        self.job_deserializer = job_deserializer
        self.default_queue_name = default_queue_name
        self.expires_extra_ms = expires_extra_ms
        # where every key lives; every part that reaches Redis through this client asks it
        self.key_layout = key_layout
        self.pickle_allow = tuple(pickle_allow)
        # queues split over shards (RedisSettings.shards): queue name -> shard count; a queue not named has one
        self.queue_shards: dict[str, int] = dict(queue_shards or {})
        self._embedded_lease: Any = None
        self._sentinel_clients: list[Any] = []
        self._result_waiter: ResultWaiter | None = None
        self.settings_description = "redis"

    def shard_queue(self, queue_name: str, job_id: str) -> str:
        """The queue that holds job ``job_id`` of ``queue_name``: the queue itself unless it is split over shards,
        else the shard the id hashes to (``keys.shard_index``); a shard's own name is returned as it is."""
        shards = self.queue_shards.get(queue_name, 1)
        return queue_name if shards <= 1 else self.key_layout.shard_queue(queue_name, shard_index(job_id, shards))

    def shard_queues(self, queue_name: str) -> list[str]:
        """Every queue ``queue_name`` is made of: itself, or its shards (shard 0 first)."""
        return shard_queues(self.key_layout, queue_name, self.queue_shards.get(queue_name, 1))

    def reading_deserializer(self) -> Deserializer:
        """What this pool reads jobs and results with: plain pickle without running code (see ``safe_pickle``)."""
        return reading_deserializer(self.job_deserializer, self.pickle_allow)

    def result_waiter(self) -> ResultWaiter:
        if self._result_waiter is None:
            self._result_waiter = ResultWaiter(self)
        return self._result_waiter

    def reply_timeout_s(self) -> float | None:
        """The socket timeout of the pool's connections (None: none)."""
        return cast(float | None, self.connection_pool.connection_kwargs.get("socket_timeout"))

    async def mget_any(self, keys: Sequence[str]) -> list[bytes | None]:
        """MGET of keys that may lie in different slots of a cluster (in one call on a single server)."""
        return cast(list[bytes | None], await self.mget(keys)) if keys else []

    async def run_scripts(self, script: Any, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Run ``script`` once per ``(keys, args)`` call, in one round trip (a cluster sends them all at once)."""
        if not calls:
            return []
        async with self.pipeline(transaction=False) as pipe:
            for script_keys, args in calls:
                await script(keys=script_keys, args=args, client=pipe)
            return list(await pipe.execute())

    async def _close_runner_parts(self) -> None:
        if self._result_waiter is not None:
            await self._result_waiter.close()
            self._result_waiter = None

    async def _release_extras(self) -> None:
        for sentinel in self._sentinel_clients:
            await sentinel.aclose()
        self._sentinel_clients = []
        if self._embedded_lease is not None:
            lease, self._embedded_lease = self._embedded_lease, None
            await asyncio.to_thread(lease.release)


class JobsRedis(JobsClient, Redis):  # type: ignore[misc]  # redis-py's own bases disagree on command_info
    """A Redis client with the settings every job key and payload is read and written with."""

    def __init__(
        self,
        pool_or_conn: ConnectionPool | None = None,
        job_serializer: Serializer | None = None,
        job_deserializer: Deserializer | None = None,
        default_queue_name: str = keys.default_queue_name,
        expires_extra_ms: int = keys.expires_extra_ms_default,
        key_layout: KeyLayout = ARQ_LAYOUT,
        pickle_allow: Sequence[str] = (),
        queue_shards: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        """arq's constructor (``ArqRedis(pool_or_conn)``): an existing redis-py ``ConnectionPool`` (or None), the
        queue's serializer pair and defaults; any other keyword goes to ``redis.asyncio.Redis`` (``host=``,
        ``connection_pool=``, …)."""
        if pool_or_conn is not None:
            kwargs["connection_pool"] = pool_or_conn
        super().__init__(**kwargs)
        self.configure(
            job_serializer=job_serializer,
            job_deserializer=job_deserializer,
            default_queue_name=default_queue_name,
            expires_extra_ms=expires_extra_ms,
            key_layout=key_layout,
            pickle_allow=pickle_allow,
            queue_shards=queue_shards,
        )

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self._close_runner_parts()
        await super().aclose(close_connection_pool)
        await self._release_extras()

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class ResultWaiter:
    """Wakes ``Job.result()`` callers the moment a runner worker publishes that their job finished.

    One pub/sub connection per pool serves every waiting caller; callers still poll at ``poll_delay`` so jobs
    finished by arq workers (which publish nothing) are seen too.
    """

    def __init__(self, redis: JobsClient) -> None:
        self._redis = redis
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._channels: set[str] = set()
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def register(self, queue_name: str, job_id: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, set()).add(future)
        channel = self._redis.key_layout.done_channel(queue_name)
        if channel not in self._channels:
            async with self._lock:
                if channel not in self._channels:
                    await self._pubsub.subscribe(channel)
                    self._channels.add(channel)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen())
        return future

    def unregister(self, job_id: str, future: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[job_id]

    async def _listen(self) -> None:
        try:
            while self._channels:
                message = await self._pubsub.get_message(timeout=1.0)
                if not message or message.get("type") != "message":
                    continue
                for job_id in finished_ids(message["data"]):
                    for future in self._waiters.pop(job_id, ()):
                        if not future.done():
                            future.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection dropped: waiters fall back to polling
            logger.debug("result listener stopped: %r", exc)
            self._channels.clear()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
