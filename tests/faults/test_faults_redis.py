"""Redis faults: the server stopped under load and started again (AOF), dropped connections, a server that stops
answering, and idle waits longer than the socket timeout. Each test that breaks a server starts its own."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from runner import JobSpec, JobStatus, Worker
from runner.engine import Job, RedisSettings, create_pool
from runner.errors import RedisUnavailable
from tests.faults.test_faults import READY, WorkerProcess, make_project, processes, wait_until
from tests.support.servers import ValkeyServer

__all__ = ["processes"]  # the fixture, shared with test_faults.py


@pytest.fixture
def server() -> Iterator[ValkeyServer]:
    """A server of this test's own, with AOF, so it can be stopped and started with its data."""
    s = ValkeyServer(appendonly=True).start()
    try:
        yield s
    finally:
        if s.proc is not None:
            os.kill(s.proc.pid, signal.SIGCONT)  # in case a test left it frozen
        s.stop()


def results(client: redis.Redis, job_ids: list[str]) -> dict[str, Any]:
    """The stored result records of those jobs that have one."""
    from runner.engine.job import deserialize_result

    raw = client.mget([f"arq:result:{job_id}" for job_id in job_ids])
    return {job_id: deserialize_result(r) for job_id, r in zip(job_ids, raw, strict=True) if r is not None}


def test_redis_stopped_for_5s_under_load_loses_nothing(
    tmp_path: Path, server: ValkeyServer, processes: list[WorkerProcess]
) -> None:
    make_project(tmp_path, server.url, lease="10s", max_jobs=5)
    processes += [WorkerProcess(tmp_path), WorkerProcess(tmp_path)]
    for proc in processes:
        proc.wait_for(READY)
    runs = tmp_path / "runs.txt"

    async def enqueue_all() -> list[str]:
        pool = await create_pool(RedisSettings.from_dsn(server.url))
        try:
            jobs = await pool.enqueue_many([JobSpec("logged", (str(runs), 0.1)) for _ in range(200)])
        finally:
            await pool.aclose()
        return [job.job_id for job in jobs if job is not None]

    job_ids = asyncio.run(enqueue_all())
    assert len(job_ids) == 200
    client = redis.Redis(port=server.port, socket_timeout=5)
    try:
        wait_until(lambda: len(results(client, job_ids)) >= 30)
        client.close()
        stopped_ms = time.time() * 1000
        server.stop()

        # a producer starting meanwhile gets a clear error, not a hang
        with pytest.raises(RedisUnavailable, match=r"^Could not connect to Redis at redis://127\.0\.0\.1:\d+/0 "):
            asyncio.run(asyncio.wait_for(create_pool(RedisSettings.from_dsn(server.url, conn_retries=0)), 30))

        time.sleep(max(0.0, 5 - (time.time() * 1000 - stopped_ms) / 1000))
        server.start()
        started_ms = time.time() * 1000

        def all_done() -> dict[str, Any] | None:
            found = results(client, job_ids)
            return found if len(found) == len(job_ids) else None

        done = wait_until(all_done, timeout=60)
    finally:
        client.close()

    assert all(info.success for info in done.values())
    ran = Counter(line.split()[0] for line in runs.read_text().splitlines())
    assert set(ran) == set(job_ids)  # every job ran (a claim that lapsed in the outage may run twice)
    # jobs that finished while Redis was away kept their results in memory and wrote them once it was back
    finished_in_outage = [
        job_id for job_id, info in done.items() if stopped_ms <= info.finish_time.timestamp() * 1000 <= started_ms
    ]
    assert finished_in_outage
    for proc in processes:
        proc.signal(signal.SIGTERM)
        assert proc.finish() == 0
        lines = proc.drain()
        # once per outage, not once per poll (a poll every 0.1 s would have logged dozens)
        assert sum("redis unreachable at redis://127.0.0.1" in line for line in lines) == 1, lines
        assert sum("redis reachable again after" in line for line in lines) == 1, lines


async def test_producer_gets_an_error_never_a_hang(server: ValkeyServer) -> None:
    pool = await create_pool(RedisSettings.from_dsn(server.url, socket_timeout=0.5, conn_retries=0))
    try:
        assert await pool.enqueue_job("anything") is not None
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGSTOP)  # the server still holds the socket but answers nothing
        try:
            with pytest.raises(redis.TimeoutError):
                await asyncio.wait_for(pool.enqueue_job("anything"), 30)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        assert await pool.enqueue_job("anything") is not None
        server.stop()
        with pytest.raises(redis.ConnectionError, match="Connect call failed"):
            await asyncio.wait_for(pool.enqueue_job("anything"), 30)
    finally:
        await pool.aclose()
    assert RedisSettings().socket_timeout == 5


async def noop(ctx: dict[str, Any]) -> str:
    await asyncio.sleep(0.02)
    return "done"


async def test_idle_waits_longer_than_the_socket_timeout_are_no_outage(
    server: ValkeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = RedisSettings.from_dsn(server.url, socket_timeout=0.5)
    worker = Worker([noop], redis_settings=settings, poll_delay=2, handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    pool = await create_pool(settings)
    try:
        await asyncio.sleep(2.5)  # an idle worker blocks for up to poll_delay, four times the socket timeout
        job = await pool.enqueue_job("noop")
        assert job is not None
        assert await job.result(timeout=10) == "done"
    finally:
        worker.request_stop()
        await task
        await worker.close()
        await pool.aclose()
    assert "unreachable" not in caplog.text


async def test_dropped_connections_are_ridden_over(
    server: ValkeyServer, make_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    settings = RedisSettings.from_dsn(server.url)
    pool = await create_pool(settings)
    killer = await create_pool(settings)
    try:
        jobs = await pool.enqueue_many([JobSpec("noop") for _ in range(300)])
        worker = make_worker([noop], redis_settings=settings, max_jobs=5, lease=1)
        task = asyncio.create_task(worker.async_run())
        kills = 0
        while not task.done() and kills < 20:
            await asyncio.sleep(0.05)
            kills += await killer.client_kill_filter(_type="normal", skipme=True)
        await asyncio.wait_for(task, 60)
        assert kills >= 5
        for job in jobs:
            assert job is not None
            assert await Job(job.job_id, pool).status() == JobStatus.complete
    finally:
        await killer.aclose()
        await pool.aclose()
    assert worker.jobs_complete >= 300
