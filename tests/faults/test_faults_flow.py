"""Flow control under faults, with real worker processes: a worker killed -9 while it holds capped slots, and a
Redis restart during a rate-limited run (runner/engine/flow.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.faults.test_faults import READY, WorkerProcess, processes, wait_until
from tests.support.servers import ValkeyServer

__all__ = ["processes"]  # the fixture, shared with test_faults.py

TASKS = '''
import asyncio
import os
import time


async def capped(ctx, hold=0.2):
    """Records its start and, if it lives, its end: the runs' intervals show how many ran at once."""
    r = ctx["redis"]
    await r.rpush("flow:runs", f"{ctx['job_id']} {os.getpid()} start {time.time()}")
    await asyncio.sleep(hold)
    await r.rpush("flow:runs", f"{ctx['job_id']} {os.getpid()} end {time.time()}")


async def paced(ctx):
    await ctx["redis"].rpush("flow:starts", str(time.time()))
'''

TOML = """\
lease = "2s"
poll_delay = "0.1s"
max_jobs = 4

[redis]
url = "{url}"

[functions.capped]
path = "flowtasks:capped"
concurrency = 2

[functions.paced]
path = "flowtasks:paced"
rate_limit = "10/s"
"""


@pytest.fixture
def server() -> Iterator[ValkeyServer]:
    s = ValkeyServer(appendonly=True).start()
    try:
        yield s
    finally:
        s.stop()


def project(directory: Path, url: str) -> Path:
    (directory / "flowtasks.py").write_text(TASKS)
    (directory / "worker.toml").write_text(TOML.format(url=url))
    return directory


def most_at_once(runs: list[str], killed: dict[int, float]) -> int:
    """The most runs open at once; a run of a killed process ends when the process died."""
    starts: dict[tuple[str, str], float] = {}
    events: list[tuple[float, int]] = []
    for line in runs:
        job_id, pid, kind, at = line.split()
        if kind == "start":
            starts[job_id, pid] = float(at)
        else:
            events += [(starts.pop((job_id, pid)), 1), (float(at), -1)]
    for (_, pid), at in starts.items():
        events += [(at, 1), (killed[int(pid)], -1)]
    most = running = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        most = max(most, running)
    return most


def enqueue(url: str, function: str, count: int, **options: object) -> list[str]:
    import asyncio

    from runner.engine import RedisSettings, create_pool

    async def go() -> list[str]:
        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            while not await pool.exists("runner:flow-spec:arq:queue"):
                await asyncio.sleep(0.05)
            jobs = [await pool.enqueue_job(function, **options) for _ in range(count)]
            return [job.job_id for job in jobs if job is not None]
        finally:
            await pool.aclose()

    return asyncio.run(go())


def test_a_killed_workers_capped_slots_come_back_within_the_lease(
    tmp_path: Path, server: ValkeyServer, processes: list[WorkerProcess]
) -> None:
    project(tmp_path, server.url)
    processes += [WorkerProcess(tmp_path) for _ in range(3)]
    for proc in processes:
        proc.wait_for(READY)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    ids = enqueue(server.url, "capped", 10, hold=0.3)
    # kill -9 the first process seen holding a slot
    first = wait_until(lambda: client.lrange("flow:runs", 0, 0))
    victim = next(p for p in processes if p.pid == int(first[0].split()[1]))
    victim.kill()
    killed = {victim.pid: time.time()}
    wait_until(lambda: all(client.exists("arq:result:" + i) for i in ids), timeout=60)
    assert most_at_once(client.lrange("flow:runs", 0, -1), killed) <= 2
    assert client.scard("runner:flow-slots:arq:queue:f\x1fcapped") == 0
    assert client.zcard("runner:flow-running:arq:queue") == 0


def test_a_redis_restart_during_a_rate_limited_run_loses_nothing(
    tmp_path: Path, server: ValkeyServer, processes: list[WorkerProcess]
) -> None:
    project(tmp_path, server.url)
    processes += [WorkerProcess(tmp_path) for _ in range(2)]
    for proc in processes:
        proc.wait_for(READY)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    ids = enqueue(server.url, "paced", 30)
    wait_until(lambda: client.llen("flow:starts") >= 5)
    server.restart()
    wait_until(lambda: all(client.exists("arq:result:" + i) for i in ids), timeout=60)
    starts = sorted(float(s) for s in client.lrange("flow:starts", 0, -1))
    assert len(starts) == 30  # each ran once, none lost in the restart
    # a burst of a tenth of the rate at most, so no second holds far more than 10 (slack for a loaded machine)
    assert max(sum(1 for t in starts if s <= t < s + 1) for s in starts) <= 15
