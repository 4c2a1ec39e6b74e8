"""``runner start --processes N`` recycling worker processes by job count and by memory, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TOML = """
max_jobs = {max_jobs}
poll_delay = 0.1
{limits}
[redis]
url = "{url}"
[functions.sleepy]
path = "tests.support.process_jobs:sync_sleep_recorded"
[functions.grow]
path = "tests.support.process_jobs:grow_recorded"
"""


def run_start(tmp_path: Path, url: str, *, max_jobs: int, limits: str, args: tuple[str, ...]) -> tuple[int, str]:
    config = tmp_path / "worker.toml"
    config.write_text(TOML.format(url=url, max_jobs=max_jobs, limits=limits))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    env["PYTHONPATH"] = str(REPO)
    process = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "start", str(config), "--burst", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
    return process.returncode, out.decode()


def runs(url: str) -> list[list[str]]:
    client = redis.Redis.from_url(url)
    try:
        return [entry.decode().split() for entry in client.lrange("test:runs", 0, -1)]
    finally:
        client.close()


def enqueue(url: str, *jobs: tuple[str, tuple[object, ...]]) -> None:
    import asyncio

    from runner import RedisSettings, create_pool

    async def go() -> None:
        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            for name, args in jobs:
                await pool.enqueue_job(name, *args)
        finally:
            await pool.aclose()

    asyncio.run(go())


def test_a_worker_process_is_replaced_after_max_jobs_per_process(redis_url: str, tmp_path: Path) -> None:
    enqueue(redis_url, *[("sleepy", (redis_url, 0.2)) for _ in range(7)])
    code, out = run_start(tmp_path, redis_url, max_jobs=2, limits="max_jobs_per_process = 3", args=())
    assert code == 0, out
    per_pid = Counter(run[2] for run in runs(redis_url))
    # exactly three jobs per process, the last one taking what was left
    assert sorted(per_pid.values()) == [1, 3, 3], out
    assert sum(per_pid.values()) == 7
    assert out.count("retires after 3 jobs (max_jobs_per_process = 3); starting its replacement") == 2
    # the replacement starts first: its start is logged before the old process's exit
    lines = out.splitlines()
    retire = next(i for i, line in enumerate(lines) if "retires after 3 jobs" in line)
    started = next(i for i, line in enumerate(lines) if i > retire and "started worker process 1" in line)
    exited = next(i for i, line in enumerate(lines) if "retired worker process 1" in line)
    assert retire < started < exited
    assert "exited with code 0" in lines[exited]


def test_a_worker_process_is_replaced_above_max_memory_per_process(redis_url: str, tmp_path: Path) -> None:
    enqueue(redis_url, ("grow", (redis_url, 200)), *[("sleepy", (redis_url, 0.4)) for _ in range(6)])
    code, out = run_start(
        tmp_path, redis_url, max_jobs=1, limits='max_memory_per_process = "150MiB"', args=("--processes", "1")
    )
    assert code == 0, out
    seen = runs(redis_url)
    assert len(seen) == 7
    grew_in = seen[0][2]
    assert "resident (max_memory_per_process = 150.0 MiB); starting its replacement" in out
    # the process that grew retired within a second or so; later jobs ran in its replacement
    assert seen[-1][2] != grew_in
    assert len({run[2] for run in seen}) == 2
