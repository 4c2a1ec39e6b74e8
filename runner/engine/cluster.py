"""Redis Cluster: ``RunnerRedisCluster``, the cluster twin of ``RunnerRedis``, and what opens it.

It is redis-py's asyncio ``RedisCluster`` (which follows MOVED and ASK, and reloads the slot map after a failover)
with the same enqueue calls and job reads as ``RunnerRedis``. The engine uses it only with a layout whose keys
of one queue share one hash slot (``keys.CLUSTER_LAYOUT``), so every script and every transaction of a queue runs
on the one node that holds the queue, and different queues (or the shards of one) spread over the masters.

Pub/sub: a worker PUBLISHes finished ids from finish.lua; on a cluster a PUBLISH reaches the subscribers of every
node, so ``Job.result()`` and the dashboard listen on any node (redis-py's ``ClusterPubSub`` picks the node of the
channel's slot). When that node goes away the listener stops and the waiters fall back to polling, as on one
server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster

from runner.engine import keys, scripts
from runner.engine.client import Producer, RunnerRedis
from runner.engine.keys import CLUSTER_LAYOUT, KeyLayout

# typed as Any: the Producer's methods are typed against redis.asyncio.Redis, whose calls RedisCluster offers too
_ClusterBase: Any = RedisCluster


class RunnerRedisCluster(Producer, _ClusterBase):  # type: ignore[misc]
    """A ``redis.asyncio.cluster.RedisCluster`` that enqueues jobs and reads them like ``RunnerRedis``."""

    is_cluster = True

    def __init__(
        self,
        *,
        job_serializer: Any = None,
        job_deserializer: Any = None,
        default_queue_name: str = keys.default_queue_name,
        expires_extra_ms: int = keys.expires_extra_ms_default,
        key_layout: KeyLayout = CLUSTER_LAYOUT,
        pickle_allow: Sequence[str] = (),
        queue_shards: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        """Keywords beyond the queue's options go to ``RedisCluster`` (``host=``, ``port=``, ``startup_nodes=``)."""
        RedisCluster.__init__(self, **kwargs)
        self.configure(
            job_serializer=job_serializer,
            job_deserializer=job_deserializer,
            default_queue_name=default_queue_name,
            expires_extra_ms=expires_extra_ms,
            key_layout=key_layout,
            pickle_allow=pickle_allow,
            queue_shards=queue_shards,
        )
        self._socket_timeout_s: float | None = kwargs.get("socket_timeout")
        self._enqueue_script = self.register_script(scripts.ENQUEUE)
        self._enqueue_flow_script = self.register_script(scripts.ENQUEUE_FLOW)

    def reply_timeout_s(self) -> float | None:
        return self._socket_timeout_s

    async def mget_any(self, keys: Sequence[str]) -> list[bytes | None]:
        # keys of different queues lie in different slots: one MGET per slot
        return cast(list[bytes | None], await self.mget_nonatomic(list(keys))) if keys else []

    async def run_scripts(self, script: Any, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
        # redis-py's cluster pipeline refuses scripts: the calls go at once, each to its slot's node
        return list(await asyncio.gather(*(script(keys=k, args=a) for k, a in calls)))

    async def aclose(self) -> None:  # type: ignore[override]  # RedisCluster.aclose takes no argument
        await self._close_runner_parts()
        await RedisCluster.aclose(self)
        await self._release_extras()

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def as_runner_redis(client: RunnerRedisCluster) -> RunnerRedis:
    """The cluster client where the engine's parts name ``RunnerRedis``: they call only what both clients offer."""
    return cast(RunnerRedis, client)


def open_cluster(kwargs: dict[str, Any], options: dict[str, Any], max_connections: int) -> RunnerRedis:
    """A cluster client from single-server connection ``kwargs`` (``_connection_kwargs``); nothing connected yet."""
    cluster_kwargs = {k: v for k, v in kwargs.items() if k not in ("db", "connection_class", "retry")}
    if kwargs.get("connection_class") is not None and kwargs["connection_class"].__name__ == "SSLConnection":
        cluster_kwargs["ssl"] = True
    return as_runner_redis(RunnerRedisCluster(max_connections=max_connections, **cluster_kwargs, **options))


def blocking_cluster_client(pool: Any) -> Any:
    """A blocking ``redis.cluster.RedisCluster`` to the cluster ``pool`` talks to (for the lease thread)."""
    from redis.cluster import ClusterNode, RedisCluster as SyncRedisCluster

    node_kwargs = dict(pool.get_nodes()[0].connection_kwargs)
    wanted = ("username", "password", "socket_timeout", "socket_connect_timeout", "ssl_cert_reqs", "ssl_ca_certs")
    kwargs = {key: node_kwargs[key] for key in wanted if key in node_kwargs}
    if node_kwargs.get("connection_class") is not None and "SSL" in node_kwargs["connection_class"].__name__:
        kwargs["ssl"] = True
    startup = [ClusterNode(node.host, node.port) for node in pool.get_primaries()]  # type: ignore[no-untyped-call]
    return SyncRedisCluster(startup_nodes=startup, decode_responses=False, **kwargs)


async def log_cluster_info(pool: Any) -> str:
    """arq's start-up line for a cluster: the first master's version, and the masters' key and client counts."""
    primaries = pool.get_primaries()
    server = await pool.info("server", target_nodes=primaries[0])
    memory = await pool.info("memory", target_nodes=primaries[0])
    clients = 0
    keys_total = 0
    for node in primaries:
        clients += int((await pool.info("clients", target_nodes=node)).get("connected_clients", 0))
        keys_total += int(await pool.dbsize(target_nodes=node))
    return (
        f"redis_version={server.get('redis_version', '?')} mem_usage={memory.get('used_memory_human', '?')} "
        f"clients_connected={clients} db_keys={keys_total} cluster_masters={len(primaries)}"
    )
