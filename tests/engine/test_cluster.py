"""The cluster layout and client: every key of a queue in one slot, queues spread over the masters, bad set-ups
refused in one sentence. The engine's own tests run on the cluster too (``@pytest.mark.layouts``)."""

from __future__ import annotations

import inspect

import pytest
from redis.crc import key_slot

from runner import RedisSettings, create_pool
from runner.engine.cluster import RunnerRedisCluster
from runner.engine.keys import ARQ_LAYOUT, CLUSTER_LAYOUT, KeyLayout, check_queue_name
from runner.errors import InvalidArgument
from tests.support.cluster import ValkeyCluster


def _every_key(layout: KeyLayout, queue: str) -> dict[str, str]:
    found = {}
    for name, method in inspect.getmembers(layout, inspect.ismethod):
        if name.startswith("_") or name == "shard_queue":  # a queue's name, not a key (tests/engine/test_shards.py)
            continue
        arity = len(inspect.signature(method).parameters)
        found[name] = method(queue, "some-id") if arity == 2 else method(queue)
    return found


def test_every_key_of_a_queue_shares_one_slot() -> None:
    for queue in ("arq:queue", "mail", "a:b:c"):
        found = _every_key(CLUSTER_LAYOUT, queue)  # every key method, those added to KeyLayout later too
        assert {key_slot(key.encode()) for key in found.values()} == {key_slot(queue.encode())}, found
        assert all(key.startswith("{" + queue + "}:") for key in found.values())
    # arq's layout spreads one queue's keys over many slots: it cannot run on a cluster
    assert len({key_slot(key.encode()) for key in _every_key(ARQ_LAYOUT, "mail").values()}) > 1


def test_a_queue_name_with_a_brace_is_refused() -> None:
    check_queue_name(ARQ_LAYOUT, "odd{name}")  # arq's layout has no tag to break
    with pytest.raises(ValueError, match=r'queue name "odd\{name\}" holds a brace'):
        check_queue_name(CLUSTER_LAYOUT, "odd{name}")


async def test_a_cluster_refuses_the_arq_layout_and_a_database() -> None:
    with pytest.raises(InvalidArgument, match="The arq key layout cannot run on a Redis Cluster"):
        await create_pool(RedisSettings(cluster=True), key_layout=ARQ_LAYOUT)
    with pytest.raises(InvalidArgument, match="A Redis Cluster has only database 0"):
        await create_pool(RedisSettings(cluster=True, database=2))


async def test_queues_spread_over_the_masters(cluster_server: ValkeyCluster) -> None:
    cluster_server.flush()
    pool = await create_pool(RedisSettings.from_dsn(cluster_server.url, cluster=True))
    try:
        assert isinstance(pool, RunnerRedisCluster) and pool.key_layout is CLUSTER_LAYOUT
        queues = [f"q{n}" for n in range(12)]
        for queue in queues:
            assert await pool.enqueue_job("f", _queue_name=queue) is not None
        holders = {cluster_server.master_of_slot(key_slot(CLUSTER_LAYOUT.queue(q).encode())).port for q in queues}
        assert len(holders) == 3
        # every node answers for its own queues: the client followed the slot map
        assert [len(await pool.queued_jobs(queue_name=q)) for q in queues] == [1] * 12
    finally:
        await pool.aclose()
