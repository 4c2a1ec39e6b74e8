"""Network faults between a client and a healthy server: replies lost in flight, stalled links, killed
connections. A StallProxy (tests/support/proxy.py) sits in between and misbehaves on the test's command."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
import redis.asyncio as aioredis

from runner.engine import JobSpec, RedisSettings, Worker, create_pool
from tests.support.proxy import StallProxy


@pytest.fixture
def proxy(redis_url: str) -> Iterator[StallProxy]:
    """A proxy in front of the test server (its database already emptied)."""
    p = StallProxy(urlparse(redis_url).port or 6379).start()
    try:
        yield p
    finally:
        p.stop()


async def test_an_enqueue_whose_reply_was_lost_reports_the_job_it_wrote(proxy: StallProxy, redis_url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(proxy.url, socket_timeout=0.5))
    direct = aioredis.Redis.from_url(redis_url)
    try:
        assert await pool.enqueue_job("anything") is not None  # the script is loaded: a lost reply may be a write
        # the script reaches the server and writes the job; its reply is held until the client gives up on it, and
        # redis-py sends the same call again on a fresh connection
        proxy.stall(requests=False)
        job = await pool.enqueue_job("anything", _job_id="lost-reply")
        assert job is not None and job.job_id == "lost-reply"
        assert proxy.connections_made >= 2  # the reply really was lost and the call really was sent again
        assert await direct.zcard("arq:queue") == 2

        proxy.resume()
        proxy.stall(requests=False)
        jobs = await pool.enqueue_many([JobSpec("anything") for _ in range(3)] + [JobSpec("x", job_id="lost-reply")])
        assert [j is not None for j in jobs] == [True, True, True, False]  # the one real duplicate is refused
        assert await direct.zcard("arq:queue") == 5
        proxy.resume()

        # a later call of its own with a taken id is a real duplicate: refused
        assert await pool.enqueue_job("anything", _job_id="lost-reply") is None
    finally:
        await direct.aclose()
        await pool.aclose()


async def noop(ctx: dict[str, Any]) -> str:
    await asyncio.sleep(0.01)
    return "done"


TROUBLE = "connection dropped or a reply took longer than socket_timeout"


def trouble_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if TROUBLE in r.getMessage()]


async def test_a_stall_past_the_socket_timeout_is_logged_once(
    proxy: StallProxy, caplog: pytest.LogCaptureFixture
) -> None:
    settings = RedisSettings.from_dsn(proxy.url, socket_timeout=0.5)
    worker = Worker([noop], redis_settings=settings, poll_delay=0.2, handle_signals=False, lease=2)
    task = asyncio.create_task(worker.async_run())
    pool = await create_pool(settings)
    try:
        jobs = [await pool.enqueue_job("noop") for _ in range(5)]
        for job in jobs:
            assert job is not None and await job.result(timeout=10) == "done"
        for _ in range(3):  # three stalls of every open connection, each past the socket timeout
            proxy.stall()
            await asyncio.sleep(1.2)
            proxy.resume()
            await asyncio.sleep(0.3)
        job = await pool.enqueue_job("noop")
        assert job is not None and await job.result(timeout=10) == "done"
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
        await worker.close()  # async_run leaves it to the caller, as arq's does
        await pool.aclose()
    lines = trouble_lines(caplog)
    # the worker's pool and the producer's each saw the trouble; neither says so more than once
    assert 1 <= len(lines) <= 2, lines
    assert all(line.startswith(f"redis at redis://127.0.0.1:{proxy.port}/0: ") for line in lines), lines
    assert "unreachable" not in caplog.text  # retries rode it out: no outage to report


async def test_a_connection_kill_storm_is_logged_once(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = RedisSettings.from_dsn(redis_url)
    worker = Worker([noop], redis_settings=settings, poll_delay=0.05, handle_signals=False, max_jobs=5)
    pool = await create_pool(settings)
    killer = aioredis.Redis.from_url(redis_url)
    try:
        await pool.enqueue_many([JobSpec("noop") for _ in range(300)])
        task = asyncio.create_task(worker.async_run())
        kills = 0
        while kills < 20 and await pool.zcard("arq:queue"):
            await asyncio.sleep(0.05)
            kills += await killer.client_kill_filter(_type="normal", skipme=True)
        while await pool.zcard("arq:queue"):
            await asyncio.sleep(0.05)
        worker.request_stop()
        await asyncio.wait_for(task, 30)
        assert kills >= 5
    finally:
        await worker.close()  # async_run leaves it to the caller, as arq's does
        await killer.aclose()
        await pool.aclose()
    assert worker.jobs_complete == 300
    lines = trouble_lines(caplog)
    assert 1 <= len(lines) <= 2, lines  # the worker's pool and the producer's (also killed), once each
