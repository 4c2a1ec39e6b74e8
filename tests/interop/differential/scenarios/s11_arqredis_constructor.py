"""Item 11: ``ArqRedis(pool_or_conn)``, arq's documented constructor, on a redis-py connection pool."""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool


async def scenario(env: Any) -> None:
    connections = ConnectionPool.from_url(env.url)
    redis = ArqRedis(connections)
    job = await redis.enqueue_job("anything", 1)
    env.observe("enqueued", job is not None)
    env.observe("queued", await redis.zcard("arq:queue"))
    other = ArqRedis(pool_or_conn=connections, default_queue_name="q2", expires_extra_ms=5000)
    second = await other.enqueue_job("anything")
    env.observe("on its default queue", await redis.zcard("q2"))
    env.observe("its expiry", round(await redis.pttl("arq:job:" + second.job_id) / 1000))
    env.observe("attributes", [other.default_queue_name, other.expires_extra_ms, other.job_serializer])
    await redis.aclose()
    await connections.disconnect()
