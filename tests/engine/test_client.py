"""The producer side: RedisSettings, create_pool, enqueue_job / enqueue_many, queued_jobs, Job handles."""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runner import (
    JobSpec,
    JobStatus,
    RedisSettings,
    ResultNotFound,
    RunnerRedis,
    SerializationError,
    Worker,
    create_pool,
    func,
)
from runner.engine.utils import timestamp_ms
from runner.errors import ConfigError, RedisUnavailable
from tests.support.servers import free_port

MakeWorker = Callable[..., Worker]


async def noop(ctx: dict[str, Any]) -> None:
    return None


def test_from_dsn_redis() -> None:
    s = RedisSettings.from_dsn("redis://user:s3cret@example.com:6380/4")
    assert (s.host, s.port, s.database) == ("example.com", 6380, 4)
    assert (s.username, s.password, s.ssl) == ("user", "s3cret", False)
    assert "s3cret" not in repr(s)
    assert s.describe() == "redis://user:***@example.com:6380/4"


def test_from_dsn_rediss_unix_embedded() -> None:
    assert RedisSettings.from_dsn("rediss://h").ssl is True
    unix = RedisSettings.from_dsn("unix:///tmp/valkey.sock?db=3")
    assert (unix.unix_socket_path, unix.database) == ("/tmp/valkey.sock", 3)
    assert RedisSettings.from_dsn("embedded://.runner").embedded_dir == ".runner"
    assert RedisSettings.from_dsn("embedded:///var/lib/runner").embedded_dir == "/var/lib/runner"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://x",
            'Redis URL "http://x" has an unsupported scheme; use redis://, rediss://, unix:// or embedded://.',
        ),
        ("redis://:pw@h:port/0", 'Redis URL "redis://:***@h:port/0" has a port that is not a number.'),
        ("redis://h/abc", 'Redis URL "redis://h/abc" has a database "abc" that is not a number.'),
    ],
)
def test_from_dsn_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        RedisSettings.from_dsn(url)
    assert str(info.value) == message


async def test_create_pool_redis_down_retries_then_clear_error() -> None:
    settings = RedisSettings(host="127.0.0.1", port=free_port(), conn_retries=2, conn_retry_delay=0.01)
    with pytest.raises(RedisUnavailable) as info:
        await create_pool(settings)
    message = str(info.value)
    assert message.startswith(f"Could not connect to Redis at redis://127.0.0.1:{settings.port}/0 after 3 attempts")
    assert message.endswith("check the URL and that the server is running.")


async def test_enqueue_writes_arq_layout(pool: RunnerRedis) -> None:
    before = timestamp_ms()
    job = await pool.enqueue_job("add", 1, 2, z=3, _job_id="j1")
    assert job is not None and job.job_id == "j1"
    raw = await pool.get("arq:job:" + "j1")
    data = pickle.loads(raw)
    assert data["f"] == "add" and data["a"] == (1, 2) and data["k"] == {"z": 3} and data["t"] is None
    assert before <= data["et"] <= timestamp_ms()
    score = await pool.zscore("arq:queue", "j1")
    assert before <= score <= timestamp_ms()
    ttl = await pool.pttl("arq:job:" + "j1")
    assert 86_000_000 < ttl <= 86_400_000
    assert await job.status() == JobStatus.queued


async def test_job_id_dedupe(pool: RunnerRedis) -> None:
    assert await pool.enqueue_job("f", _job_id="same") is not None
    assert await pool.enqueue_job("f", _job_id="same") is None
    assert await pool.zcard("arq:queue") == 1
    # a kept result also blocks the id
    await pool.delete("arq:job:" + "same")
    await pool.zrem("arq:queue", "same")
    await pool.set("arq:result:" + "same", b"x")
    assert await pool.enqueue_job("f", _job_id="same") is None


@pytest.mark.layouts
async def test_concurrent_enqueues_of_one_id_only_one_wins(pool: RunnerRedis) -> None:
    results = await asyncio.gather(*(pool.enqueue_job("f", _job_id="race") for _ in range(20)))
    assert sum(r is not None for r in results) == 1


async def test_unique_for_refuses_after_finish(pool: RunnerRedis) -> None:
    assert await pool.enqueue_job("f", _job_id="u", _unique_for=60) is not None
    await pool.delete("arq:job:" + "u")
    await pool.zrem("arq:queue", "u")
    assert await pool.enqueue_job("f", _job_id="u", _unique_for=60) is None
    assert 0 < await pool.pttl("runner:unique:" + "u") <= 60_000


@pytest.mark.layouts
async def test_a_held_id_refuses_every_enqueue_of_it(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    """The window holds the id against a plain `_job_id` enqueue too, after the job ran and left no result."""
    assert await pool.enqueue_job("noop", _job_id="held", _unique_for=60) is not None
    await make_worker([func(noop, keep_result=0)]).async_run()
    keys = pool.key_layout
    assert await pool.exists(keys.job("arq:queue", "held"), keys.result("arq:queue", "held")) == 0  # only the marker
    assert await pool.enqueue_job("noop", _job_id="held") is None
    assert await pool.enqueue_job("noop", _job_id="held", _unique_for=5) is None
    assert (await pool.enqueue_many([JobSpec("noop", job_id="held")])) == [None]
    # once the window is over, the id is free again
    await pool.delete(keys.unique("arq:queue", "held"))
    assert await pool.enqueue_job("noop", _job_id="held") is not None


async def test_a_plain_enqueue_sets_no_window(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    """The other direction: an id enqueued without `_unique_for` is free once its job left no trace."""
    assert await pool.enqueue_job("noop", _job_id="plain") is not None
    assert await pool.enqueue_job("noop", _job_id="plain", _unique_for=60) is None  # still queued: taken
    await make_worker([func(noop, keep_result=0)]).async_run()
    assert await pool.exists("runner:unique:plain") == 0
    assert await pool.enqueue_job("noop", _job_id="plain", _unique_for=60) is not None


async def test_defer_by_and_until(pool: RunnerRedis) -> None:
    job = await pool.enqueue_job("f", _defer_by=timedelta(seconds=30))
    assert job is not None
    assert await job.status() == JobStatus.deferred
    score = await pool.zscore("arq:queue", job.job_id)
    assert score - timestamp_ms() > 25_000
    ttl = await pool.pttl("arq:job:" + job.job_id)
    assert ttl > 86_400_000  # the job lives its delay plus expires_extra_ms
    when = datetime.now(UTC) + timedelta(minutes=5)
    job2 = await pool.enqueue_job("f", _defer_until=when)
    assert job2 is not None
    assert await pool.zscore("arq:queue", job2.job_id) == int(round(when.timestamp() * 1000))
    with pytest.raises(ValueError, match="use either 'defer_until' or 'defer_by' or neither, not both"):
        await pool.enqueue_job("f", _defer_until=when, _defer_by=1)


async def test_defer_until_in_the_past_is_due_now(pool: RunnerRedis) -> None:
    job = await pool.enqueue_job("f", _defer_until=datetime.now(UTC) - timedelta(hours=1))
    assert job is not None
    assert await job.status() == JobStatus.queued


async def test_expires(pool: RunnerRedis) -> None:
    job = await pool.enqueue_job("f", _expires=5)
    assert job is not None
    assert 0 < await pool.pttl("arq:job:" + job.job_id) <= 5000


async def test_negative_expires_is_refused_nothing_written(pool: RunnerRedis) -> None:
    # it used to store a payload that vanished at once, leaving a "queued" job that could only fail as expired
    with pytest.raises(ValueError, match=r"^_expires must be a positive duration \(got -5s\)$"):
        await pool.enqueue_job("f", _expires=-5)
    with pytest.raises(ValueError, match="_expires must be a positive duration"):
        await pool.enqueue_many([JobSpec("f"), JobSpec("f", expires=timedelta(seconds=-1))])
    assert await pool.dbsize() == 0


async def test_a_resent_enqueue_call_is_applied_once(pool: RunnerRedis) -> None:
    # what redis-py does when a reply is lost: the very same script call again (tests/faults/test_faults_network.py
    # loses a real reply through a proxy); the second run answers what the first one did
    call = ["arq:queue", "runner:wake:arq:queue", "arq:abort", "runner:enqueued:t0k"]
    call += ["arq:job:a", "arq:result:a", "runner:unique:a", "arq:job:b", "arq:result:b", "runner:unique:b"]
    argv: list[Any] = [20_000]
    argv += ["a", b"payload", timestamp_ms(), 60_000, 0, "b", b"payload", timestamp_ms(), 60_000, 0]
    await pool.set("arq:job:b", b"taken before")
    assert await pool._enqueue_script(keys=call, args=argv) == [1, 0]
    assert await pool._enqueue_script(keys=call, args=argv) == [1, 0]
    assert 0 < await pool.pttl("runner:enqueued:t0k") <= 20_000
    assert await pool.zcard("arq:queue") == 1
    # another call (another token) with the same ids is a real duplicate
    assert await pool.enqueue_job("f", _job_id="a") is None


async def test_unserializable_args_clear_error_nothing_written(pool: RunnerRedis) -> None:
    with pytest.raises(SerializationError) as info:
        await pool.enqueue_job("send", threading.Lock())
    # arq's words; the serializer's own error is the cause
    assert str(info.value) == 'unable to serialize job "send"'
    assert isinstance(info.value.__cause__, TypeError)
    assert await pool.dbsize() == 0


@pytest.mark.layouts
async def test_enqueue_many_one_round_trip(pool: RunnerRedis) -> None:
    specs = [JobSpec("f", (i,)) for i in range(100)] + [JobSpec("f", job_id="dup"), JobSpec("f", job_id="dup")]
    specs.append(JobSpec("g", queue_name="other"))
    jobs = await pool.enqueue_many(specs)
    assert len(jobs) == 103
    assert sum(j is not None for j in jobs) == 102
    assert jobs[100] is not None and jobs[101] is None
    assert await pool.zcard(pool.key_layout.queue("arq:queue")) == 101
    assert await pool.zcard(pool.key_layout.queue("other")) == 1
    listed = await pool.queued_jobs()
    assert len(listed) == 101 and {j.function for j in listed} == {"f"}
    assert all(j.score is not None and j.job_id for j in listed)


async def test_wake_token_pushed_once(pool: RunnerRedis) -> None:
    await pool.enqueue_many([JobSpec("f") for _ in range(10)])
    await pool.enqueue_job("f")
    assert await pool.llen("runner:wake:arq:queue") == 1


async def test_enqueue_clears_stale_abort(pool: RunnerRedis) -> None:
    # an abort requested for a job id that no longer exists must not kill a later job with that id (arq #485)
    await pool.zadd("arq:abort", {"again": timestamp_ms()})
    assert await pool.enqueue_job("f", _job_id="again") is not None
    assert await pool.zscore("arq:abort", "again") is None


@pytest.mark.layouts
async def test_status_not_found_and_result_not_found(pool: RunnerRedis) -> None:
    from runner import Job

    job = Job("nope", pool)
    assert await job.status() == JobStatus.not_found
    assert await job.info() is None
    with pytest.raises(ResultNotFound):
        await job.result(timeout=1)


@pytest.mark.layouts
async def test_result_timeout(pool: RunnerRedis) -> None:
    job = await pool.enqueue_job("f")
    assert job is not None
    with pytest.raises(TimeoutError):
        await job.result(timeout=0.1, poll_delay=0.02)


@pytest.mark.layouts
async def test_info_of_queued_job(pool: RunnerRedis) -> None:
    job = await pool.enqueue_job("f", 1, x=2)
    assert job is not None
    info = await job.info()
    assert info is not None
    assert (info.function, info.args, info.kwargs, info.job_id) == ("f", (1,), {"x": 2}, job.job_id)
    assert info.score is not None
    assert await job.result_info() is None


async def echo(ctx: dict[str, object], value: str) -> str:
    return value


@pytest.mark.layouts
@pytest.mark.parametrize("job_id", ["with space", "tab\tand\nnewline", "colon:3:digits", "ünïcödé id"])
async def test_result_wakes_on_the_finish_message_whatever_the_id(
    pool: RunnerRedis, redis_settings: RedisSettings, job_id: str
) -> None:
    from runner import Worker

    job = await pool.enqueue_job("echo", "done", _job_id=job_id)
    assert job is not None
    # what Job.result() waits on between its polls: resolved only by the worker's finish message
    waiter = pool.result_waiter()
    finished = await waiter.register("arq:queue", job_id)
    other = await waiter.register("arq:queue", job_id.split()[0] if " " in job_id else job_id + "x")
    worker = Worker([echo], redis_settings=redis_settings, burst=True, handle_signals=False)
    try:
        await worker.async_run()
    finally:
        await worker.close()
    await asyncio.wait_for(asyncio.shield(finished), 5)
    assert not other.done()  # a part of the id, or another id, is not woken
    assert await job.result(timeout=1) == "done"


def test_finish_messages_old_and_new() -> None:
    from runner.engine.protocol import finished_ids

    assert finished_ids(b"10:with space1:x") == ["with space", "x"]
    assert finished_ids("5:ünï".encode()) == ["ünï"]  # a length in bytes
    assert finished_ids(b"a b c") == ["a", "b", "c"]  # what a runner worker before 0.2 sends
    assert finished_ids(b"9:short") == ["9:short"]
