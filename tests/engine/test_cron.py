"""cron() and CronScheduler against a real server; three workers running a per-second schedule exactly once."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from runner.engine.client import RunnerRedis
from runner.engine.connection import RedisSettings, create_pool
from runner.engine.cron import CronJob, CronScheduler, cron, latest_between
from runner.engine.worker import Worker
from runner.errors import ConfigError, ImportStringError

QUEUE = "cron-test"


async def tick_job(ctx: dict[str, Any]) -> None:
    return None


@pytest.fixture
async def pool(redis_settings: RedisSettings) -> AsyncIterator[RunnerRedis]:
    redis = await create_pool(redis_settings, default_queue_name=QUEUE)
    try:
        yield redis
    finally:
        await redis.aclose()


async def _queued_ids(pool: RunnerRedis) -> list[str]:
    return sorted(job.job_id for job in await pool.queued_jobs(queue_name=QUEUE))


# -- cron() ------------------------------------------------------------------------------------------------------


def test_cron_defaults_follow_arq() -> None:
    job = cron(tick_job, hour=9, minute=30)
    assert job.name == "cron:tick_job"
    assert job.coroutine is tick_job
    assert (job.keep_result_s, job.keep_result_forever, job.max_tries, job.timeout_s) == (0.0, False, 1, None)
    assert (job.unique, job.run_at_startup, job.catch_up, job.job_id, job.tz) == (True, False, False, None, None)
    assert job.schedule.microseconds == (123_456,)
    assert job.next_after(datetime(2024, 1, 1, tzinfo=UTC)).isoformat() == "2024-01-01T09:30:00.123456+00:00"


def test_cron_from_a_path_and_a_crontab_string_in_a_zone() -> None:
    job = cron("tests.engine.test_cron:tick_job", schedule="0 8 * * mon-fri", tz="Europe/London", timeout=30)
    assert job.name == "cron:tick_job"
    assert job.timeout_s == 30.0
    assert job.next_after(datetime(2024, 6, 1, tzinfo=UTC)).isoformat() == "2024-06-03T08:00:00+01:00"


def test_worker_wide_zone_applies_when_the_job_names_none() -> None:
    job = cron(tick_job, schedule="0 8 * * *")
    after = datetime(2024, 6, 1, tzinfo=UTC)
    assert job.next_after(after, ZoneInfo("Asia/Kolkata")).isoformat() == "2024-06-01T08:00:00+05:30"
    assert cron(tick_job, schedule="0 8 * * *", tz="UTC").next_after(after, ZoneInfo("Asia/Kolkata")).hour == 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"schedule": "0 8 * * *", "hour": 9},
            'cron job "cron:tick_job": give either schedule or the fields (hour), not both; '
            "a crontab string has its own minute, hour, day, month and weekday columns",
        ),
        (
            {"schedule": "0 8 * * *", "microsecond": 5},
            'cron job "cron:tick_job": microsecond cannot be combined with schedule; crontab runs on the second',
        ),
        (
            {"schedule": "0 8 * * *", "tz": "Mars/Olympus"},
            'cron job "cron:tick_job": tz: unknown time zone "Mars/Olympus"; use an IANA name like "Europe/London" '
            'or "UTC"',
        ),
        ({"hour": 24}, 'cron job "cron:tick_job": hour 24 is out of range 0-23'),
        ({"schedule": "0 24 * * *"}, 'cron "0 24 * * *": hour 24 is out of range 0-23'),
        ({"max_tries": 0}, 'cron job "cron:tick_job": max_tries must be at least 1 (got 0)'),
    ],
)
def test_cron_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        cron(tick_job, **kwargs)
    assert str(info.value) == message


def test_cron_runs_sync_functions_in_threads_and_refuses_bad_paths() -> None:
    def sync(ctx: dict[str, Any]) -> None:
        return None

    assert cron(sync).executor == "thread"  # a plain def runs in the worker's thread pool, as for func()
    with pytest.raises(TypeError, match='executor "async" runs `async def` functions only'):
        cron(sync, executor="async")
    with pytest.raises(ImportStringError):
        cron("tests.engine.test_cron:missing")


def test_latest_between_finds_the_last_missed_occurrence() -> None:
    job = cron(tick_job, schedule="0 * * * *")
    lower = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)
    assert latest_between(job, lower, datetime(2024, 1, 1, 7, 30, tzinfo=UTC)) == datetime(2024, 1, 1, 7, tzinfo=UTC)
    assert latest_between(job, lower, datetime(2024, 1, 1, 3, 59, tzinfo=UTC)) is None
    yearly = cron(tick_job, schedule="@yearly")
    found = latest_between(yearly, datetime(2020, 6, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC))
    assert found == datetime(2024, 1, 1, tzinfo=UTC)


# -- the scheduler against a real server --------------------------------------------------------------------------


def _scheduler(pool: RunnerRedis, *jobs: CronJob, **kwargs: Any) -> CronScheduler:
    return CronScheduler(jobs, pool=pool, queue_name=QUEUE, **kwargs)


@pytest.mark.layouts
async def test_an_occurrence_is_enqueued_once_even_after_it_finished(pool: RunnerRedis) -> None:
    job = cron(tick_job, schedule="*/5 * * * *")
    scheduler = _scheduler(pool, job)
    at = datetime(2030, 1, 1, 12, 5, tzinfo=UTC)
    unix_ms = int(at.timestamp() * 1000)
    assert await scheduler.enqueue(job, at, at + timedelta(minutes=5)) is True
    assert await _queued_ids(pool) == [f"cron:tick_job:{unix_ms}"]
    assert (
        await pool.zscore(pool.key_layout.queue(QUEUE), f"cron:tick_job:{unix_ms}") == unix_ms
    )  # deferred to the exact time
    # the job runs and leaves nothing behind (keep_result=0): the idempotency marker still refuses it
    await pool.delete(pool.key_layout.job(QUEUE, f"cron:tick_job:{unix_ms}"))
    await pool.zrem(pool.key_layout.queue(QUEUE), f"cron:tick_job:{unix_ms}")
    assert await scheduler.enqueue(job, at, at + timedelta(minutes=5)) is False
    assert await _queued_ids(pool) == []
    ttl = await pool.pttl(pool.key_layout.unique(QUEUE, f"cron:tick_job:{unix_ms}"))
    assert 3_500_000 < ttl <= 3_600_000  # max(2 periods, 1 hour)
    assert int(await pool.get(pool.key_layout.cron_last(QUEUE, "cron:tick_job"))) == unix_ms


async def test_unique_false_and_fixed_job_id(pool: RunnerRedis) -> None:
    loose = cron(tick_job, name="loose", schedule="* * * * *", unique=False)
    fixed = cron(tick_job, name="fixed", schedule="* * * * *", job_id="the-one")
    scheduler = _scheduler(pool, loose, fixed)
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert await scheduler.enqueue(loose, at, at + timedelta(minutes=1))
    assert await scheduler.enqueue(loose, at, at + timedelta(minutes=1))  # a new random id each time
    assert await scheduler.enqueue(fixed, at, at + timedelta(minutes=1))
    assert not await scheduler.enqueue(fixed, at + timedelta(minutes=1), at + timedelta(minutes=2))
    ids = await _queued_ids(pool)
    assert len(ids) == 3
    assert "the-one" in ids
    assert await pool.exists("runner:unique:" + "the-one") == 0  # a fixed id is not held after it ran


async def test_tick_enqueues_what_is_due_within_the_lead(pool: RunnerRedis) -> None:
    job = cron(tick_job, schedule="* * * * * *")
    scheduler = _scheduler(pool, job, lead=2.5)
    now = datetime(2030, 1, 1, 0, 0, 0, 400_000, tzinfo=UTC)
    scheduler._next[0] = job.next_after(now)
    await scheduler.tick(now)
    base = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert await _queued_ids(pool) == [f"cron:tick_job:{base + 1000}", f"cron:tick_job:{base + 2000}"]
    assert scheduler._next[0] == datetime(2030, 1, 1, 0, 0, 3, tzinfo=UTC)
    await scheduler.tick(now)  # nothing new is due
    assert len(await _queued_ids(pool)) == 2


async def test_a_stalled_scheduler_does_not_replay_old_occurrences(pool: RunnerRedis) -> None:
    job = cron(tick_job, schedule="* * * * *")
    scheduler = _scheduler(pool, job, lead=1.0, max_late=60.0)
    now = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
    scheduler._next[0] = now - timedelta(minutes=10, seconds=30)  # asleep for ten minutes
    await scheduler.tick(now)
    # 11:50 … 11:59 are more than a minute late and are dropped; 12:00 (30s late) still runs
    ms = int(datetime(2030, 1, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)
    assert await _queued_ids(pool) == [f"cron:tick_job:{ms}"]
    # when every one is too late, only the most recent runs
    await pool.flushdb()
    strict = _scheduler(pool, job, lead=1.0, max_late=10.0)
    strict._next[0] = now - timedelta(minutes=10, seconds=30)
    await strict.tick(now)
    assert await _queued_ids(pool) == [f"cron:tick_job:{ms}"]


@pytest.mark.layouts
async def test_catch_up_enqueues_the_last_missed_occurrence_only(pool: RunnerRedis) -> None:
    hourly = cron(tick_job, name="hourly", schedule="0 * * * *", catch_up=True)
    plain = cron(tick_job, name="plain", schedule="0 * * * *")
    scheduler = _scheduler(pool, hourly, plain)
    now = datetime(2030, 1, 1, 7, 30, tzinfo=UTC)
    three = int(datetime(2030, 1, 1, 3, tzinfo=UTC).timestamp() * 1000)
    last = pool.key_layout.cron_last
    await pool.set(last(QUEUE, "hourly"), three)
    await pool.set(last(QUEUE, "plain"), three)
    await scheduler.startup(now)
    seven = int(datetime(2030, 1, 1, 7, tzinfo=UTC).timestamp() * 1000)
    assert await _queued_ids(pool) == [f"hourly:{seven}"]
    assert int(await pool.get(last(QUEUE, "hourly"))) == seven
    # a second worker starting now finds nothing missed
    await _scheduler(pool, hourly).startup(now + timedelta(seconds=5))
    assert await _queued_ids(pool) == [f"hourly:{seven}"]


async def test_catch_up_without_history_and_run_at_startup(pool: RunnerRedis) -> None:
    fresh = cron(tick_job, name="fresh", schedule="0 * * * *", catch_up=True)
    eager = cron(tick_job, name="eager", schedule="0 0 1 1 *", run_at_startup=True)
    await _scheduler(pool, fresh, eager).startup(datetime(2030, 1, 1, 7, 30, tzinfo=UTC))
    ids = await _queued_ids(pool)
    assert ids == [f"eager:{int(datetime(2030, 1, 1, 7, 30, tzinfo=UTC).timestamp() * 1000)}"]


async def test_run_loops_until_cancelled(pool: RunnerRedis) -> None:
    job = cron(tick_job, schedule="* * * * * *")
    task = asyncio.create_task(CronScheduler([job], pool=pool, queue_name=QUEUE).run())
    try:
        for _ in range(200):
            if len(await _queued_ids(pool)) >= 3:
                break
            await asyncio.sleep(0.05)
        ids = await _queued_ids(pool)
        assert len(ids) >= 3
        stamps = sorted(int(i.rpartition(":")[2]) for i in ids)
        assert all(b - a == 1000 for a, b in zip(stamps, stamps[1:], strict=False))  # consecutive seconds
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# -- exactly once across workers ---------------------------------------------------------------------------------

RUNS: list[tuple[str, float]] = []


async def record_run(ctx: dict[str, Any]) -> None:
    RUNS.append((ctx["job_id"], time.time()))


async def test_three_workers_run_each_occurrence_exactly_once(redis_url: str) -> None:
    RUNS.clear()
    settings = RedisSettings.from_dsn(redis_url)
    workers = [
        Worker(
            cron_jobs=[cron(record_run, second=None, microsecond=0)],  # every second
            queue_name=QUEUE,
            redis_settings=settings,
            burst=False,
            handle_signals=False,
            poll_delay=0.05,
        )
        for _ in range(3)
    ]
    tasks = [asyncio.create_task(worker.async_run()) for worker in workers]
    try:
        for _ in range(400):  # wait for several occurrences, however slow the machine is
            if len({job_id for job_id, _ in RUNS}) >= 6 or any(task.done() for task in tasks):
                break
            await asyncio.sleep(0.05)
    finally:
        for worker in workers:
            worker.request_stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        for worker in workers:
            await worker.close()
    counts = Counter(job_id for job_id, _ in RUNS)
    assert len(counts) >= 6
    assert set(counts.values()) == {1}, counts  # no occurrence ran twice
    stamps = sorted(int(job_id.rpartition(":")[2]) for job_id in counts)
    assert all(b - a == 1000 for a, b in zip(stamps, stamps[1:], strict=False)), stamps  # none was skipped
    for job_id, ran_at in RUNS:
        assert ran_at * 1000 >= int(job_id.rpartition(":")[2]) - 1  # never before its time


async def test_an_unreachable_server_keeps_the_occurrence_for_the_next_tick(pool: RunnerRedis) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = RunnerRedis(host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    job = cron(tick_job, schedule="* * * * *")
    scheduler = CronScheduler([job], pool=down, queue_name=QUEUE)
    now = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
    scheduler._next[0] = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    try:
        assert await scheduler.tick(now) == 1
    finally:
        await down.aclose()
    assert scheduler._next[0] == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)  # not lost: tried again
    scheduler.pool = pool
    assert await scheduler.tick(now) == 0
    assert await _queued_ids(pool) == [f"cron:tick_job:{int(datetime(2030, 1, 1, 12, tzinfo=UTC).timestamp() * 1000)}"]
