"""Awkward loads: jobs slower than the lease, 10 MB payloads, 100 000 deferred jobs, a producer whose clock says a
job's time has long passed."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from runner import JobSpec, JobStatus, Worker
from runner.engine import RunnerRedis
from runner.engine.utils import timestamp_ms

MakeWorker = Callable[..., Worker]
runs: Counter[str] = Counter()


async def slow(ctx: dict[str, Any], seconds: float) -> str:
    runs[ctx["job_id"]] += 1
    await asyncio.sleep(seconds)
    return "slow done"


async def quick(ctx: dict[str, Any]) -> str:
    runs[ctx["job_id"]] += 1
    return "quick done"


async def digest(ctx: dict[str, Any], blob: bytes) -> tuple[int, str]:
    return len(blob), hashlib.sha256(blob).hexdigest()


async def echo(ctx: dict[str, Any], blob: bytes) -> bytes:
    return blob


async def count_keys(pool: RunnerRedis, pattern: str) -> int:
    return int(await pool.eval("return #redis.call('KEYS', ARGV[1])", 0, pattern))  # type: ignore[misc]


async def test_job_slower_than_the_lease_stays_with_its_worker(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    runs.clear()
    # 3.5 leases long: only the heartbeat keeps the claim, while a second worker on the queue looks for work
    long_job = await pool.enqueue_job("slow", 3.5)
    short_jobs = [await pool.enqueue_job("quick") for _ in range(20)]
    workers = [make_worker([slow, quick], lease=1, max_jobs=1, burst=False) for _ in range(2)]
    tasks = [asyncio.create_task(w.async_run()) for w in workers]
    try:
        assert long_job is not None
        assert await long_job.result(timeout=30) == "slow done"
        for job in short_jobs:
            assert job is not None and await job.result(timeout=30) == "quick done"
    finally:
        for w in workers:
            w.request_stop()
        await asyncio.gather(*tasks)
    assert runs[long_job.job_id] == 1
    assert sum(runs.values()) == 21
    # a busy worker claims no more than it can run, so the short jobs went to the free one meanwhile
    assert sorted(w.jobs_started for w in workers)[0] >= 1
    assert sum(w.jobs_started for w in workers) == 21


async def test_10mb_payloads(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    blobs = [os.urandom(10 * 1024 * 1024) for _ in range(3)]
    jobs = [await pool.enqueue_job("digest", blob) for blob in blobs]
    echoed = await pool.enqueue_job("echo", blobs[0])
    worker = make_worker([digest, echo], max_jobs=4)
    await worker.async_run()
    for job, blob in zip(jobs, blobs, strict=True):
        assert job is not None
        assert await job.result() == (len(blob), hashlib.sha256(blob).hexdigest())
    assert echoed is not None and await echoed.result() == blobs[0]
    assert worker.jobs_failed == 0


async def test_100000_deferred_jobs_wait_while_due_ones_run(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    runs.clear()
    specs = [JobSpec("quick", defer_by=3600) for _ in range(100_000)]
    for first in range(0, len(specs), 10_000):
        written = await pool.enqueue_many(specs[first : first + 10_000])
        assert all(written)
    due = [await pool.enqueue_job("quick") for _ in range(5)]
    assert await pool.zcard("arq:queue") == 100_005

    worker = make_worker([quick], max_burst_jobs=10)  # would take up to 10, but only 5 are due
    run = asyncio.create_task(worker.async_run())
    for job in due:
        assert job is not None and await job.result(timeout=30) == "quick done"
    worker.request_stop()
    await run

    assert worker.jobs_started == 5 and sum(runs.values()) == 5
    # nothing deferred was touched: no claims, no try counters, every score still an hour away
    assert await pool.zcard("arq:queue") == 100_000
    assert await count_keys(pool, "arq:in-progress:" + "*") == 0
    assert await count_keys(pool, "arq:retry:" + "*") == 0
    [(_, earliest)] = await pool.zrange("arq:queue", 0, 0, withscores=True)
    assert earliest > timestamp_ms() + 3_500_000


async def test_defer_until_in_the_past_runs_at_once(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    runs.clear()
    # a producer whose clock runs behind: its "later" is already past for the worker
    naive_local = await pool.enqueue_job("quick", _defer_until=datetime.now() - timedelta(hours=1))
    aware_utc = await pool.enqueue_job("quick", _defer_until=datetime.now(UTC) - timedelta(minutes=10))
    future = await pool.enqueue_job("quick", _defer_until=datetime.now(UTC) + timedelta(hours=1))
    assert naive_local is not None and aware_utc is not None and future is not None
    assert (await naive_local.info()).score < timestamp_ms() - 3_500_000  # type: ignore[union-attr]

    worker = make_worker([quick], max_burst_jobs=3)
    run = asyncio.create_task(worker.async_run())
    assert await naive_local.result(timeout=30) == "quick done"
    assert await aware_utc.result(timeout=30) == "quick done"
    worker.request_stop()
    await run
    assert await future.status() == JobStatus.deferred
    assert worker.jobs_started == 2


async def test_defer_until_days_in_the_past_still_runs(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    job = await pool.enqueue_job("quick", _defer_until=datetime.now(UTC) - timedelta(days=2))
    assert job is not None
    worker = make_worker([quick])
    await worker.async_run()
    assert await job.result(timeout=5) == "quick done"
