"""Real worker processes: a job that holds its thread or blocks the event loop past the lease runs exactly once,
and a worker that dies still gives its jobs back within the lease."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner import RunnerRedis

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TOML = """
lease = "5s"
poll_delay = 0.1
[redis]
url = "{url}"
[functions.sleepy]
path = "tests.support.process_jobs:sync_sleep_recorded"
[functions.blocker]
path = "tests.support.process_jobs:loop_blocker_recorded"
"""


def start_worker(config: Path, *flags: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "start", str(config), *flags],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    out, _ = process.communicate(timeout=30)
    return out.decode()


async def runs(pool: RunnerRedis) -> list[list[str]]:
    return [entry.decode().split() for entry in await pool.lrange("test:runs", 0, -1)]


def config_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "worker.toml"
    path.write_text(TOML.format(url=url))
    return path


async def test_jobs_holding_a_thread_or_the_loop_past_the_lease_run_once(
    pool: RunnerRedis, redis_url: str, tmp_path: Path
) -> None:
    config = config_file(tmp_path, redis_url)
    # 15 s with a 5 s lease: three leases long, on two workers that both look for work all the while
    sleepy = await pool.enqueue_job("sleepy", redis_url, 15)
    blocker = await pool.enqueue_job("blocker", redis_url, 15)
    assert sleepy is not None and blocker is not None
    workers = [start_worker(config, "--burst") for _ in range(2)]
    outputs = []
    try:
        for worker in workers:
            worker.wait(90)
    finally:
        outputs = [stop(worker) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    seen = await runs(pool)
    assert sorted(run[0] for run in seen) == sorted([sleepy.job_id, blocker.job_id]), seen
    assert await sleepy.result() == "slept" and await blocker.result() == "blocked"
    text = "\n".join(outputs)
    assert "lost its claim" not in text
    # the watchdog saw the loop blocked, and said by which job
    assert f"by job {blocker.job_id}:blocker" in text


async def test_a_dead_worker_gives_its_job_back_within_the_lease(
    pool: RunnerRedis, redis_url: str, tmp_path: Path
) -> None:
    config = config_file(tmp_path, redis_url)
    job = await pool.enqueue_job("sleepy", redis_url, 60)
    assert job is not None
    first = start_worker(config)
    second = None
    try:
        deadline = time.monotonic() + 30
        while not await runs(pool) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(await runs(pool)) == 1
        second = start_worker(config, "--burst")  # up and polling before the first dies
        await asyncio.sleep(3)
        assert second.poll() is None
        os.kill(first.pid, signal.SIGKILL)
        killed_at = time.time()
        second.wait(60)
    finally:
        stop(first)
        if second is not None:
            out = stop(second)
    seen = await runs(pool)
    assert [run[1] for run in seen] == ["1", "2"], out
    assert float(seen[1][3]) - killed_at <= 5 + 1  # the lease, and one poll
    assert await job.result() == "slept"
