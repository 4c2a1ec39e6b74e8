"""A hot queue split over shards (runner/engine/shards.py): producers spread its jobs over shards on different
masters of a real 3-master cluster, each job runs once, an id is unique across the shards and found by its handle,
every shard is claimed from while another has work, and bad counts are refused in one sentence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.crc import key_slot

from runner import JobStatus, RedisSettings, Worker, create_pool, cron, func
from runner.engine.client import RunnerRedis
from runner.engine.inspection import find_job, queue_jobs, queue_stats, results
from runner.engine.job import Job
from runner.engine.keys import ARQ_LAYOUT, CLUSTER_LAYOUT, shard_index, shard_queues
from runner.engine.shards import plan_lanes
from runner.errors import InvalidArgument
from tests.support.cluster import ValkeyCluster


async def noop(ctx: dict[str, Any]) -> None:
    return None


def spread_queue(cluster: ValkeyCluster, shards: int) -> str:
    """A queue name whose ``shards`` shards lie on as many different masters."""
    for n in range(1000):
        name = f"hot{n}"
        names = shard_queues(CLUSTER_LAYOUT, name, shards)
        masters = {cluster.master_of_slot(key_slot(CLUSTER_LAYOUT.queue(q).encode())).port for q in names}
        if len(masters) == shards:
            return name
    raise AssertionError("no queue name spreads its shards over the masters")


def ids_on(shard: int, shards: int, count: int, stem: str) -> list[str]:
    """``count`` job ids that hash to ``shard``."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        if shard_index(f"{stem}-{n:05d}", shards) == shard:
            found.append(f"{stem}-{n:05d}")
        n += 1
    return found


@pytest.fixture
async def sharded(cluster_server: ValkeyCluster) -> AsyncIterator[tuple[RunnerRedis, str, RedisSettings]]:
    cluster_server.flush()
    queue = spread_queue(cluster_server, 3)
    settings = RedisSettings.from_dsn(cluster_server.url, cluster=True, shards={queue: 3})
    pool = await create_pool(settings, default_queue_name=queue)
    try:
        yield pool, queue, settings
    finally:
        await pool.aclose()


def test_shard_names_and_tags() -> None:
    assert shard_queues(CLUSTER_LAYOUT, "hot", 3) == ["hot", "hot:1", "hot:2"]
    assert shard_queues(CLUSTER_LAYOUT, "hot", 1) == ["hot"]
    for name in shard_queues(CLUSTER_LAYOUT, "hot", 4):
        # every key of a shard shares the shard's own tag
        keys = [CLUSTER_LAYOUT.queue(name), CLUSTER_LAYOUT.job(name, "x"), CLUSTER_LAYOUT.wake(name)]
        assert {key_slot(key.encode()) for key in keys} == {key_slot(name.encode())}
        assert all(key.startswith("{" + name + "}:") for key in keys)
    # the hash of an id is the same in every process and spreads ids over the shards
    assert shard_index("job-1", 4) == shard_index("job-1", 4) and shard_index("anything", 1) == 0
    counts = [0, 0, 0, 0]
    for n in range(4000):
        counts[shard_index(f"id{n}", 4)] += 1
    assert min(counts) > 850, counts


def test_lanes_split_max_jobs() -> None:
    lanes = plan_lanes(CLUSTER_LAYOUT, "hot", 4, 10, None)
    assert [lane.max_jobs for lane in lanes] == [3, 3, 2, 2]
    assert [lane.health_check_key for lane in lanes][:2] == ["{hot}:health-check", "{hot:1}:health-check"]
    assert [lane.max_jobs for lane in plan_lanes(CLUSTER_LAYOUT, "hot", 3, 2, "mine")] == [1, 1, 1]
    assert plan_lanes(CLUSTER_LAYOUT, "hot", 3, 2, "mine")[0].health_check_key == "mine"


async def test_bad_shard_counts_are_refused() -> None:
    with pytest.raises(
        InvalidArgument, match=r'RedisSettings.shards: shards of queue "hot" must be a whole number of '
    ):
        await create_pool(RedisSettings(cluster=True, shards={"hot": 0}))
    with pytest.raises(InvalidArgument, match=r'queue "hot" split over 2 shards needs the cluster layout'):
        await create_pool(RedisSettings(shards={"hot": 2}))
    with pytest.raises(InvalidArgument, match=r"^shards must be a whole number of at least 1 \(got 0\)$"):
        Worker([noop], queue_name="hot", redis_settings=RedisSettings(cluster=True), shards=0)
    with pytest.raises(InvalidArgument, match=r'queue "hot" split over 3 shards needs the cluster layout'):
        Worker([noop], queue_name="hot", shards=3)
    with pytest.raises(
        InvalidArgument, match=r"shards=2 but the pool's RedisSettings.shards splits queue \"hot\" over 3"
    ):
        Worker([noop], queue_name="hot", redis_settings=RedisSettings(cluster=True, shards={"hot": 3}), shards=2)
    with pytest.raises(InvalidArgument, match=r"the queue sets a cap or rate limit, which each shard would count"):
        Worker([noop], queue_name="hot", redis_settings=RedisSettings(cluster=True), shards=2, global_max_jobs=3)
    # one shard is a plain queue, on any layout
    assert Worker([noop], queue_name="hot", shards=1).lanes[0].queue_name == "hot"
    assert ARQ_LAYOUT.shard_queue("hot", 0) == "hot"


async def test_jobs_spread_over_masters_and_each_runs_once(
    sharded: tuple[RunnerRedis, str, RedisSettings], cluster_server: ValkeyCluster
) -> None:
    pool, queue, settings = sharded
    ran: list[int] = []

    async def record(ctx: dict[str, Any], n: int) -> int:
        ran.append(n)
        return n

    jobs = [await pool.enqueue_job("record", n) for n in range(300)]
    per_shard = [await pool.zcard(CLUSTER_LAYOUT.queue(name)) for name in pool.shard_queues(queue)]
    assert sum(per_shard) == 300 and min(per_shard) > 60, per_shard  # random ids: spread over the shards
    holders = {cluster_server.master_of_slot(key_slot(name.encode())).port for name in pool.shard_queues(queue)}
    assert len(holders) == 3
    assert len(await pool.queued_jobs()) == 300  # every shard's, summed

    worker = Worker(
        [func(record, name="record")],
        queue_name=queue,
        redis_settings=settings,
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
    )
    assert worker.shards == 3  # from the settings
    try:
        await worker.async_run()
    finally:
        await worker.close()
    assert sorted(ran) == list(range(300)) and worker.jobs_complete == 300
    assert sum([await pool.zcard(CLUSTER_LAYOUT.queue(name)) for name in pool.shard_queues(queue)]) == 0
    # each handle finds its job's result on its shard; a handle made from the id alone does too
    for n, job in enumerate(jobs):
        assert job is not None and await job.result(timeout=5) == n
    first = jobs[0]
    assert first is not None
    again = Job(first.job_id, pool, _queue_name=queue)
    assert await again.status() == JobStatus.complete and await again.result(timeout=1) == 0
    assert len(await pool.all_job_results()) == 300
    assert len(await results(pool, queue_name=queue)) == 300
    assert (await queue_stats(pool, queue)).recent.get("complete") == 300


async def test_a_job_id_is_unique_across_the_shards(sharded: tuple[RunnerRedis, str, RedisSettings]) -> None:
    pool, queue, settings = sharded
    # a second producer, with its own pool, picks the same shard for an id
    other = await create_pool(settings, default_queue_name=queue)
    try:
        ids = [f"order-{n}" for n in range(30)]
        assert {shard_index(job_id, 3) for job_id in ids} == {0, 1, 2}
        for job_id in ids:
            assert await pool.enqueue_job("f", _job_id=job_id) is not None
            assert await other.enqueue_job("f", _job_id=job_id) is None
            assert await pool.enqueue_job("f", _job_id=job_id, _queue_name=queue) is None
        assert len(await other.queued_jobs()) == 30
        # runner info and runner jobs: the queue's shards summed, each job found on its own shard
        stats = await queue_stats(other, queue)
        assert stats.queue == queue and stats.queued == 30 and stats.in_progress == 0
        assert sorted([row.job_id async for row in queue_jobs(other, queue)]) == sorted(ids)
        row = await find_job(other, "order-7", [queue])
        assert row is not None and row.queue == other.shard_queue(queue, "order-7") and row.function == "f"
        job = Job("order-7", other, _queue_name=queue)
        assert await job.status() == JobStatus.queued
        assert (await job.info()) is not None
        with pytest.raises(InvalidArgument, match=r'_dedup_key cannot be used on queue "hot\d+", which is split'):
            await pool.enqueue_job("f", _dedup_key="k", _throttle=5)
    finally:
        await other.aclose()


async def test_abort_finds_the_job_on_its_shard(sharded: tuple[RunnerRedis, str, RedisSettings]) -> None:
    pool, queue, settings = sharded
    started = asyncio.Event()

    async def sleeps(ctx: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(30)

    job_id = ids_on(2, 3, 1, "long")[0]
    job = await pool.enqueue_job("sleeps", _job_id=job_id)
    assert job is not None
    worker = Worker(
        [func(sleeps, name="sleeps")],
        queue_name=queue,
        redis_settings=settings,
        handle_signals=False,
        poll_delay=0.05,
        allow_abort_jobs=True,
    )
    task = asyncio.create_task(worker.async_run())
    try:
        await asyncio.wait_for(started.wait(), 10)
        handle = Job(job_id, pool, _queue_name=queue)
        assert await handle.status() == JobStatus.in_progress
        assert await handle.abort(timeout=5, poll_delay=0.05) is True
    finally:
        worker.request_stop()
        await task
        await worker.close()
    assert worker.jobs_failed == 1


async def test_no_shard_starves_while_another_has_work(sharded: tuple[RunnerRedis, str, RedisSettings]) -> None:
    pool, queue, settings = sharded
    order: list[str] = []

    async def step(ctx: dict[str, Any]) -> None:
        order.append(ctx["job_id"])
        await asyncio.sleep(0.01)

    heavy = ids_on(0, 3, 90, "heavy")
    light = ids_on(1, 3, 5, "light") + ids_on(2, 3, 5, "light")
    for job_id in heavy:  # shard 0 is full before the others get any work
        await pool.enqueue_job("step", _job_id=job_id)
    for job_id in light:
        await pool.enqueue_job("step", _job_id=job_id)
    worker = Worker(
        [func(step, name="step")],
        queue_name=queue,
        redis_settings=settings,
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
        max_jobs=3,
    )
    try:
        await worker.async_run()
    finally:
        await worker.close()
    assert sorted(order) == sorted(heavy + light)
    # one slot per shard: the light shards' ten jobs are all done while shard 0 still has most of its 90 waiting
    last_light = max(order.index(job_id) for job_id in light)
    assert last_light < 40, (last_light, order)
    # within a shard, jobs due together start in the order they were enqueued (FIFO per shard)
    assert [job_id for job_id in order if job_id in heavy] == heavy


async def test_a_sharded_worker_spreads_cron_and_its_jobs_enqueues(cluster_server: ValkeyCluster) -> None:
    cluster_server.flush()
    queue = spread_queue(cluster_server, 3)
    ran: list[str] = []

    async def fan_out(ctx: dict[str, Any]) -> None:
        ran.append("fan_out")
        for n in range(30):  # through ctx["redis"], the worker's own pool: it learnt the shard count
            await ctx["redis"].enqueue_job("leaf", n, _queue_name=queue)

    async def leaf(ctx: dict[str, Any], n: int) -> None:
        ran.append(ctx["queue_name"] if "queue_name" in ctx else "leaf")

    # the settings name no shards: Worker(shards=3) alone makes its pool spread the jobs
    settings = RedisSettings.from_dsn(cluster_server.url, cluster=True)
    worker = Worker(
        [func(fan_out, name="fan_out"), func(leaf, name="leaf")],
        cron_jobs=[cron(func(fan_out, name="fan_out"), name="fan", hour=3, run_at_startup=True)],
        queue_name=queue,
        redis_settings=settings,
        shards=3,
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
    )
    try:
        await worker.async_run()
        per_shard = [await worker.pool.zcard(CLUSTER_LAYOUT.queue(name)) for name in worker.pool.shard_queues(queue)]
    finally:
        await worker.close()
    assert ran.count("fan_out") == 1 and len(ran) == 31 and worker.jobs_complete == 31
    assert per_shard == [0, 0, 0]
    pool = await create_pool(settings)
    try:
        # with no shard count, this pool sees only shard 0: the results are spread over all three (the 30 leaves';
        # a cron job keeps no result by default, as in arq)
        kept = [
            len([k async for k in pool.scan_iter(match=CLUSTER_LAYOUT.result_prefix(q) + "*")])
            for q in shard_queues(CLUSTER_LAYOUT, queue, 3)
        ]
    finally:
        await pool.aclose()
    assert sum(kept) == 30 and all(kept), kept
