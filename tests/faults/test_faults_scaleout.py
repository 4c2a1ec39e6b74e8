"""Scale-out faults on real multi-node servers: a Sentinel primary killed under load, a cluster master killed
mid-drain (its replica promoted), and a busy queue's slot moved to another master while workers drain it. Each
test starts its own servers; in each, every job enqueued runs (at least once) and each outage is logged once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from runner import RedisSettings, Worker, create_pool, func
from runner.engine.keys import CLUSTER_LAYOUT
from tests.support.cluster import SentinelGroup, ValkeyCluster, wait_for

pytestmark = pytest.mark.slow

JOBS = 240
QUEUE = "busy"


async def drain_through(
    settings: RedisSettings, fault: Callable[[], Awaitable[None]], caplog: pytest.LogCaptureFixture
) -> Counter[str]:
    """Two workers drain JOBS jobs that a producer enqueues while ``fault`` strikes halfway; returns the runs of
    each job id, once every id has run."""
    ran: Counter[str] = Counter()

    async def record(ctx: dict[str, Any]) -> None:
        ran[ctx["job_id"]] += 1
        await asyncio.sleep(0.002)

    workers = [
        Worker(
            [func(record, name="record")],
            redis_settings=settings,
            queue_name=QUEUE,
            handle_signals=False,
            poll_delay=0.05,
            lease=3,
            max_jobs=4,
        )
        for _ in range(2)
    ]
    tasks = [asyncio.create_task(w.async_run()) for w in workers]
    pool = await create_pool(settings)
    struck: asyncio.Task[None] | None = None
    try:
        for n in range(JOBS):
            if n == JOBS // 2:
                struck = asyncio.create_task(fault())  # enqueues go on while it strikes
            while True:
                try:
                    # a fixed id: a call resent after the fault finds its first write and is not run twice
                    await pool.enqueue_job("record", _job_id=f"job-{n}", _queue_name=QUEUE)
                    break
                except (redis.RedisError, OSError):
                    await asyncio.sleep(0.1)
        assert struck is not None
        await struck
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while len(ran) < JOBS and loop.time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        for w in workers:
            w.request_stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in workers:
            await w.close()
        await pool.aclose()
    return ran


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("redis unreachable")]


async def test_sentinel_failover_under_load_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    group = SentinelGroup(replicas=1, sentinels=3).start()
    try:
        settings = RedisSettings(
            host=group.sentinel_hosts, sentinel=True, sentinel_master=group.master_name, socket_timeout=2
        )
        first = group.primary.port

        async def kill_primary() -> None:
            assert group.primary.proc is not None
            os.kill(group.primary.proc.pid, signal.SIGKILL)
            group.primary.proc.wait(5)
            group.primary.proc = None

        ran = await drain_through(settings, kill_primary, caplog)
        assert group.current_primary_port() == group.replicas[0].port != first  # the replica was promoted
    finally:
        group.stop()
    assert set(ran) == {f"job-{n}" for n in range(JOBS)}
    assert len(outage_lines(caplog)) <= 2, outage_lines(caplog)  # once per worker at most


async def test_cluster_master_killed_mid_drain_replica_promoted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cluster = ValkeyCluster(masters=3, replicas=1).start()
    try:
        settings = RedisSettings.from_dsn(cluster.url, cluster=True, socket_timeout=2)
        slot = key_slot(CLUSTER_LAYOUT.queue(QUEUE).encode())
        victim = cluster.master_of_slot(slot)
        group = cluster.replicas[cluster.masters.index(victim)]

        async def kill_master() -> None:
            assert victim.proc is not None
            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.proc.wait(5)
            victim.proc = None

        ran = await drain_through(settings, kill_master, caplog)
        assert cluster.master_of_slot(slot) is group[0]  # the replica took over the queue's slot
    finally:
        cluster.stop()
    assert set(ran) == {f"job-{n}" for n in range(JOBS)}
    assert len(outage_lines(caplog)) <= 2, outage_lines(caplog)


async def test_busy_queue_slot_migrates_while_workers_drain(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cluster = ValkeyCluster(masters=3).start()
    try:
        settings = RedisSettings.from_dsn(cluster.url, cluster=True, socket_timeout=2)
        slot = key_slot(CLUSTER_LAYOUT.queue(QUEUE).encode())
        source = cluster.master_of_slot(slot)
        target = next(m for m in cluster.masters if m is not source)

        async def migrate() -> None:
            await asyncio.to_thread(move_slot, cluster, slot, source.port, target.port)

        ran = await drain_through(settings, migrate, caplog)
        assert cluster.master_of_slot(slot) is target
    finally:
        cluster.stop()
    assert set(ran) == {f"job-{n}" for n in range(JOBS)}
    assert outage_lines(caplog) == [], outage_lines(caplog)  # ASK, MOVED and TRYAGAIN are followed, not outages


def move_slot(cluster: ValkeyCluster, slot: int, source_port: int, target_port: int) -> None:
    """Move one slot with its keys, as redis-cli --cluster reshard does: IMPORTING/MIGRATING, MIGRATE, NODE."""
    source = redis.Redis(port=source_port, decode_responses=True)
    target = redis.Redis(port=target_port, decode_responses=True)
    source_id, target_id = cluster.node_id(source_port), cluster.node_id(target_port)
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    while keys := source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 20):
        source.execute_command("MIGRATE", "127.0.0.1", target_port, "", 0, 5000, "REPLACE", "KEYS", *keys)
    for port in [target_port, source_port] + [
        m.port for m in cluster.masters if m.port not in (source_port, target_port)
    ]:
        redis.Redis(port=port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    wait_for(lambda: cluster.master_of_slot(slot).port == target_port, "the slot map to settle")
