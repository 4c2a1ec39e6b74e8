"""Crash safety with real processes: a worker killed mid-job, graceful and forced stops, the supervisor riding out
a Redis outage, poison jobs, and claims that never outlive their jobs.

Worker processes are ``runner start`` on a small worker.toml; each is ended by its pid. The other fault tests
(test_faults_redis.py, test_faults_load.py, test_faults_soak.py) reuse the helpers here.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from runner import JobExecutionFailed, JobStatus, Retry, Worker
from runner.engine import RedisSettings, RunnerRedis, create_pool
from runner.engine.utils import timestamp_ms
from tests.support.servers import ValkeyServer

TASKS = '''
import asyncio
import os
import time


async def marked(ctx, hold_first=0.0, hold=0.0):
    """Records each run in a Redis list, then holds; the first run may hold longer, to be killed meanwhile."""
    n = await ctx["redis"].rpush(f"faults:runs:{ctx['job_id']}", f"{os.getpid()} {ctx['job_try']} {time.time()}")
    await asyncio.sleep(hold_first if n == 1 else hold)
    return os.getpid()


async def logged(ctx, path, hold=0.0):
    """Records each run in a file, which works while Redis is down."""
    with open(path, "a") as f:
        f.write(f"{ctx['job_id']} {os.getpid()}\\n")
    await asyncio.sleep(hold)
    return os.getpid()
'''

TOML = """\
lease = "{lease}"
poll_delay = "0.1s"
job_timeout = "120s"
job_completion_wait = "{wait}"
max_jobs = {max_jobs}

[redis]
url = "{url}"
conn_retries = 0

[functions.marked]
path = "faulttasks:marked"

[functions.logged]
path = "faulttasks:logged"
"""

READY = r"worker \w+ on arq:queue"


def make_project(directory: Path, url: str, *, lease: str = "2s", wait: str = "0s", max_jobs: int = 10) -> Path:
    (directory / "faulttasks.py").write_text(TASKS)
    (directory / "worker.toml").write_text(TOML.format(url=url, lease=lease, wait=wait, max_jobs=max_jobs))
    return directory


def child_env(directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RUNNER_") and k.upper() != "REDIS_URL"}
    env["PYTHONPATH"] = str(directory)
    return env


class WorkerProcess:
    """A ``runner start`` process whose stderr lines are collected by a thread; ended by its pid."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "runner.cli", "start", "worker.toml", *args],
            cwd=directory,
            env=child_env(directory),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.popen.pid
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first line from now on that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r} in {timeout}s; saw:\n" + "\n".join(self.seen))

    def drain(self) -> list[str]:
        """Every line read so far."""
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def finish(self, timeout: float = 30) -> int:
        """Wait for the exit code; a process still running after ``timeout`` is killed (and the wait fails)."""
        try:
            return self.popen.wait(timeout)
        finally:
            self.end()

    def end(self) -> None:
        """Kill the process if it still runs, and release its pipe."""
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait()
        self.pump.join(10)
        if self.popen.stderr is not None:
            self.popen.stderr.close()


@pytest.fixture
def processes() -> Iterator[list[WorkerProcess]]:
    """Collects the processes a test starts and ends any still running, by pid."""
    started: list[WorkerProcess] = []
    yield started
    for proc in started:
        proc.end()


def enqueue(url: str, function: str, *args: Any, **kwargs: Any) -> str:
    async def go() -> str:
        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            job = await pool.enqueue_job(function, *args, **kwargs)
            assert job is not None
            return job.job_id
        finally:
            await pool.aclose()

    return asyncio.run(go())


def result_info(url: str, job_id: str, timeout: float = 30) -> Any:
    """The job's result record, waiting up to ``timeout`` seconds for it."""

    async def go() -> Any:
        from runner.engine import Job

        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            job = Job(job_id, pool)
            await job.result(timeout=timeout, poll_delay=0.1)
            return await job.result_info()
        finally:
            await pool.aclose()

    return asyncio.run(go())


def wait_until(check: Callable[[], Any], timeout: float = 30, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy (that value), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def runs_of(client: redis.Redis, job_id: str) -> list[tuple[int, int]]:
    """(pid, job_try) of every run of a ``marked`` job, in order."""
    raw = client.lrange(f"faults:runs:{job_id}", 0, -1)
    return [(int(pid), int(job_try)) for pid, job_try, _ in (line.decode().split() for line in raw)]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    try:
        yield c
    finally:
        c.close()


# -- a worker killed mid-job -----------------------------------------------------------------------------------------


def test_killed_worker_job_runs_again_on_another_within_the_lease(
    tmp_path: Path, redis_url: str, client: redis.Redis, processes: list[WorkerProcess]
) -> None:
    make_project(tmp_path, redis_url, lease="2s")
    processes += [WorkerProcess(tmp_path), WorkerProcess(tmp_path)]
    for proc in processes:
        proc.wait_for(READY)
    # the first try holds for a minute; the job's timeout is 120 s, so arq would leave it stuck for 130 s
    job_id = enqueue(redis_url, "marked", hold_first=60)
    [(pid, _)] = wait_until(lambda: runs_of(client, job_id))
    victim, survivor = (processes[0], processes[1]) if processes[0].pid == pid else (processes[1], processes[0])
    assert victim.pid == pid
    victim.kill()
    killed_ms = timestamp_ms()
    # what bounds recovery, read straight from Redis: the claim dies within one lease, and the job's score is due
    # by then; neither depends on the job's timeout
    with client.pipeline(transaction=True) as pipe:
        ttl_ms, score, tries = (
            pipe.pttl("arq:in-progress:" + job_id).zscore("arq:queue", job_id).get("arq:retry:" + job_id).execute()
        )
    assert ttl_ms <= 2000 and ttl_ms != -1  # -2: already expired
    if tries == b"1":  # not taken again yet (a slow test process may look after the survivor already did)
        assert score is not None and score <= killed_ms + 2000

    info = result_info(redis_url, job_id, timeout=20)
    assert info.success and info.result == survivor.pid
    # at least once, and exactly one re-run: the killed try, then the one that finished
    assert runs_of(client, job_id) == [(victim.pid, 1), (survivor.pid, 2)]
    assert client.exists("arq:in-progress:" + job_id) == 0
    assert client.zcard("arq:queue") == 0


# -- stopping with SIGTERM ---------------------------------------------------------------------------------------------


def test_sigterm_with_job_completion_wait_lets_the_running_job_finish(
    tmp_path: Path, redis_url: str, client: redis.Redis, processes: list[WorkerProcess]
) -> None:
    make_project(tmp_path, redis_url, wait="20s")
    proc = WorkerProcess(tmp_path)
    processes.append(proc)
    proc.wait_for(READY)
    job_id = enqueue(redis_url, "marked", hold_first=2.0)
    wait_until(lambda: runs_of(client, job_id))
    proc.signal(signal.SIGTERM)
    proc.wait_for(r"waiting up to 20s for 1 running jobs")
    assert proc.finish() == 0
    info = result_info(redis_url, job_id, timeout=1)
    assert info.success and info.result == proc.pid
    assert runs_of(client, job_id) == [(proc.pid, 1)]


def test_sigterm_without_completion_wait_requeues_the_job_with_its_score(
    tmp_path: Path, redis_url: str, client: redis.Redis, processes: list[WorkerProcess]
) -> None:
    make_project(tmp_path, redis_url)
    first = WorkerProcess(tmp_path)
    processes.append(first)
    first.wait_for(READY)
    job_id = enqueue(redis_url, "marked", hold_first=60)
    wait_until(lambda: runs_of(client, job_id))
    first.signal(signal.SIGTERM)
    first.wait_for(rf"{job_id}:marked cancelled by the stop, will run again")
    assert first.finish() == 0

    # requeued as it was: claim released, original score back (a plain job's score is its enqueue time)
    payload = client.get("arq:job:" + job_id)
    assert payload is not None
    assert client.zscore("arq:queue", job_id) == pickle.loads(payload)["et"]
    assert client.exists("arq:in-progress:" + job_id) == 0

    second = WorkerProcess(tmp_path)
    processes.append(second)
    info = result_info(redis_url, job_id)
    assert info.success and info.result == second.pid
    # the stop ended the first run, not the job: its try was given back, and the second run is try 1 again
    assert runs_of(client, job_id) == [(first.pid, 1), (second.pid, 1)]


def test_second_sigterm_cancels_at_once_despite_completion_wait(
    tmp_path: Path, redis_url: str, client: redis.Redis, processes: list[WorkerProcess]
) -> None:
    make_project(tmp_path, redis_url, wait="60s")
    proc = WorkerProcess(tmp_path)
    processes.append(proc)
    proc.wait_for(READY)
    job_id = enqueue(redis_url, "marked", hold_first=60)
    wait_until(lambda: runs_of(client, job_id))
    proc.signal(signal.SIGTERM)
    proc.wait_for(r"waiting up to 60s for 1 running jobs")
    proc.signal(signal.SIGTERM)
    proc.wait_for(rf"{job_id}:marked cancelled by the stop, will run again")
    # finish() allows 30 s, half the completion wait: only the second signal can end the process in time
    assert proc.finish() == 0
    assert client.exists("arq:in-progress:" + job_id) == 0
    assert client.zscore("arq:queue", job_id) is not None
    assert client.exists("arq:result:" + job_id) == 0


# -- the supervisor --------------------------------------------------------------------------------------------------


def test_supervisor_relaunches_a_child_through_a_redis_outage_and_forwards_sigterm(
    tmp_path: Path, processes: list[WorkerProcess]
) -> None:
    server = ValkeyServer(appendonly=True).start()
    try:
        make_project(tmp_path, server.url, wait="20s")
        supervisor = WorkerProcess(tmp_path, "--processes", "2")
        processes.append(supervisor)
        first = int(supervisor.wait_for(r"started worker process 1 \(pid (\d+)\)").group(1))
        supervisor.wait_for(READY)
        supervisor.wait_for(READY)
        server.stop()
        os.kill(first, signal.SIGKILL)
        supervisor.wait_for(rf"worker process 1 \(pid {first}\) exited with code -9; restarting in 0.5s")
        # the relaunched child finds no Redis (conn_retries = 0): it is relaunched later, not the end of everything
        supervisor.wait_for(r"worker process 1 \(pid \d+\) exited with code 3; restarting in 1.0s")
        server.start()
        supervisor.wait_for(r"started worker process 1 \(pid (\d+)\)")
        supervisor.wait_for(READY)
        job_id = enqueue(server.url, "marked")
        assert result_info(server.url, job_id).success
        # the supervisor forwards SIGTERM, and the child lets its running job finish (job_completion_wait)
        job_id = enqueue(server.url, "marked", hold_first=1.0)
        client = redis.Redis(port=server.port)
        try:
            wait_until(lambda: runs_of(client, job_id))
            supervisor.signal(signal.SIGTERM)
            assert supervisor.finish() == 0
            assert result_info(server.url, job_id, timeout=1).success
            assert len(runs_of(client, job_id)) == 1
        finally:
            client.close()
    finally:
        server.stop()


# -- poison jobs (in one process) ------------------------------------------------------------------------------------


async def bye(ctx: dict[str, Any]) -> None:
    sys.exit(3)


async def interrupted(ctx: dict[str, Any]) -> None:
    raise KeyboardInterrupt


async def fine(ctx: dict[str, Any]) -> str:
    return "fine"


async def picky_start(ctx: dict[str, Any]) -> None:
    if ctx["job_id"].startswith("hook-"):
        raise RuntimeError("the start hook broke")


async def test_poison_jobs_fail_alone_and_the_worker_goes_on(
    pool: RunnerRedis, make_worker: Callable[..., Worker]
) -> None:
    good = [await pool.enqueue_job("fine", _job_id=f"good-{n}") for n in range(3)]
    exits = await pool.enqueue_job("bye")
    interrupts = await pool.enqueue_job("interrupted")
    hooked = await pool.enqueue_job("fine", _job_id="hook-1")
    # a payload that decodes but is not a job, and one that does not decode at all
    await pool.set("arq:job:" + "not-a-job", pickle.dumps([1, 2, 3]))
    await pool.set("arq:job:" + "garbage", b"\x80\x04not pickle")
    await pool.zadd("arq:queue", {"not-a-job": timestamp_ms(), "garbage": timestamp_ms()})

    worker = make_worker([bye, interrupted, fine], on_job_start=picky_start)
    await worker.async_run()

    assert worker.jobs_complete == 3 and worker.jobs_failed == 5
    for job in good:
        assert job is not None and await job.result() == "fine"
    from runner.engine import Job

    failures = {
        "bye": (exits, "the job raised SystemExit(3), which would have stopped the worker"),
        "interrupted": (interrupts, "the job raised KeyboardInterrupt(), which would have stopped the worker"),
        "hook": (hooked, "failed outside the job function: RuntimeError: the start hook broke"),
    }
    for job, message in failures.values():
        assert job is not None
        info = await job.result_info()
        assert info is not None and not info.success
        assert isinstance(info.result, JobExecutionFailed) and str(info.result) == message
    for job_id in ("not-a-job", "garbage"):
        info = await Job(job_id, pool).result_info()
        assert info is not None and not info.success
        assert "deserialize" in str(info.result)
    assert await pool.zcard("arq:queue") == 0
    assert [k async for k in pool.scan_iter(match="arq:in-progress:" + "*")] == []


# -- claims never outlive their jobs ---------------------------------------------------------------------------------


async def again(ctx: dict[str, Any]) -> None:
    raise Retry(defer=30)


async def test_heartbeat_after_an_outcome_never_revives_its_claim(
    pool: RunnerRedis, make_worker: Callable[..., Worker]
) -> None:
    done = await pool.enqueue_job("fine")
    retried = await pool.enqueue_job("again")
    assert done is not None and retried is not None
    worker: Worker

    async def heartbeat_now(ctx: dict[str, Any]) -> None:
        # after_job_end runs once the outcome is written and while the job still counts as running here: the
        # worst moment for a heartbeat, which must not take back a claim the outcome just released
        assert worker.parts is not None
        await worker.parts.leases.heartbeat()

    worker = make_worker([fine, again], lease=10, after_job_end=heartbeat_now, max_burst_jobs=2)
    before = timestamp_ms()
    await worker.async_run()

    assert await done.status() == JobStatus.complete
    assert await pool.exists("arq:in-progress:" + done.job_id) == 0
    # the retry is due 30 s on, not one lease (10 s) on, and nobody holds it
    assert await pool.exists("arq:in-progress:" + retried.job_id) == 0
    score = await pool.zscore("arq:queue", retried.job_id)
    assert score is not None and score >= before + 30_000


async def test_heartbeat_reports_a_job_finished_elsewhere_while_stalled(
    pool: RunnerRedis, make_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    job = await pool.enqueue_job("fine")
    assert job is not None
    worker: Worker

    async def stall_then_heartbeat(ctx: dict[str, Any]) -> None:
        # as if this worker froze past its lease while another worker took the job over and finished it
        await pool.delete("arq:in-progress:" + job.job_id)
        await pool.zrem("arq:queue", job.job_id)
        assert worker.parts is not None
        await worker.parts.leases.heartbeat()
        await asyncio.sleep(5)  # the loss cancels this run here (issue 14): nothing of it is written

    worker = make_worker([fine], lease=10, on_job_start=stall_then_heartbeat)
    await asyncio.wait_for(worker.async_run(), 4)
    assert await pool.exists("arq:in-progress:" + job.job_id) == 0  # the heartbeat did not revive the claim
    assert await pool.exists("arq:result:" + job.job_id) == 0
    assert f"job {job.job_id} lost its claim while it ran here" in caplog.text
