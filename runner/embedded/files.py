"""The files of an embedded server's data directory: paths, pid files, the lock, the socket and the config."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger("runner.embedded")

LINGER_S = 2.0
CHECK_INTERVAL_S = 0.25
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
LOG_ROTATE_BYTES = 1 << 20
APPENDFSYNC = "everysec"
# the data holds every job's arguments: private to the user, whatever the umask of whoever started the server
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SERVER_UMASK = 0o077  # the supervisor's, and so valkey-server's: the AOF files it writes are born private


def socket_path_limit() -> int:
    """The longest unix socket path the OS accepts, in bytes (``sun_path`` minus its terminating NUL)."""
    return 107 if sys.platform.startswith("linux") else 103


@dataclass(frozen=True)
class DataDir:
    """The files of one embedded server, all inside its (absolute) data directory."""

    root: Path

    @classmethod
    def of(cls, data_dir: str | os.PathLike[str]) -> DataDir:
        """The directory, made absolute: relative paths are taken from the current directory."""
        return cls(Path(os.path.abspath(os.path.expanduser(os.fspath(data_dir)))))

    @property
    def socket(self) -> Path:
        return self.root / "valkey.sock"

    @property
    def lock(self) -> Path:
        return self.root / "embedded.lock"

    @property
    def supervisor_pid(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def valkey_pid(self) -> Path:
        return self.root / "valkey.pid"

    @property
    def clients(self) -> Path:
        return self.root / "clients"

    @property
    def conf(self) -> Path:
        return self.root / "valkey.conf"

    @property
    def log(self) -> Path:
        return self.root / "embedded.log"

    @property
    def valkey_log(self) -> Path:
        return self.root / "valkey.log"

    @property
    def aof_dir(self) -> Path:
        return self.root / "appendonlydir"


def open_private(path: Path, mode: str = "a") -> IO[Any]:
    """``open(path, mode)`` for appending or writing, the file created 0600 (an existing one keeps its mode)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    return open(os.open(path, flags, PRIVATE_FILE), mode)


def write_private(path: Path, text: str) -> None:
    with open_private(path, "w") as handle:
        handle.write(text)


def make_private(paths: DataDir) -> None:
    """chmod the data directory and runner's and valkey's files in it 0700 (directories) / 0600 (files): a
    directory made by an older runner, or under a loose umask, was readable by every user of the machine.

    Only the files this module names are touched, so a data directory shared with other files keeps theirs.
    """
    root = paths.root
    entries = [root, paths.clients, paths.aof_dir, root / ".gitignore"]
    entries += [paths.conf, paths.lock, paths.supervisor_pid, paths.valkey_pid, paths.log, paths.valkey_log]
    entries += [log.with_name(log.name + ".1") for log in (paths.log, paths.valkey_log)]
    for directory in (paths.clients, paths.aof_dir):
        with contextlib.suppress(OSError):
            entries += list(directory.iterdir())
    for path in entries:
        with contextlib.suppress(OSError):  # missing, gone meanwhile, or not ours to change
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                wanted = PRIVATE_DIR
            elif stat.S_ISREG(info.st_mode):
                wanted = PRIVATE_FILE
            else:
                continue  # the socket (valkey sets it 0700: unixsocketperm) or a symlink
            if stat.S_IMODE(info.st_mode) != wanted:
                path.chmod(wanted)


@contextlib.contextmanager
def locked(paths: DataDir) -> Iterator[None]:
    import fcntl

    with open_private(paths.lock) as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- processes and pid files --------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc, or None where /proc does not describe it."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], fields[19]


def _start_token(pid: int) -> str:
    stat = _proc_stat(pid)
    return stat[1] if stat else ""


def pid_alive(pid: int, token: str = "") -> bool:
    """Whether ``pid`` runs and, when ``token`` (its start time) is given, is still the same process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    stat = _proc_stat(pid)
    if stat is None:
        # on Linux a missing /proc entry means it just exited; elsewhere kill() is all we have
        return not Path("/proc/self/stat").exists()
    state, started = stat
    # a zombie is dead for our purposes: its parent just has not collected it yet
    return state not in ("Z", "X") and (not token or started == token)


def write_pid_file(path: Path, pid: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    write_private(tmp, f"{pid} {_start_token(pid)}\n")
    os.replace(tmp, path)


def read_pid_file(path: Path) -> tuple[int, str] | None:
    """(pid, start token) from one of our pid files, or None when it is missing or unreadable."""
    try:
        parts = path.read_text().split()
        return int(parts[0]), (parts[1] if len(parts) > 1 else "")
    except (OSError, ValueError, IndexError):
        return None


def live_pid(path: Path) -> int | None:
    """The pid in ``path`` when that process is alive, else None."""
    entry = read_pid_file(path)
    if entry is None or not pid_alive(*entry):
        return None
    return entry[0]


def live_clients(paths: DataDir, *, clean: bool = True) -> list[int]:
    """Pids of the processes holding a lease, sorted; with ``clean``, files of dead processes are removed."""
    pids: set[int] = set()
    try:
        entries = list(paths.clients.iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        record = read_pid_file(entry)
        if record is not None and pid_alive(*record):
            pids.add(record[0])
        elif clean and not entry.name.startswith("."):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
    return sorted(pids)


def register(paths: DataDir) -> Path:
    pid = os.getpid()
    path = paths.clients / f"{pid}-{uuid.uuid4().hex[:12]}"
    write_pid_file(path, pid)
    return path


def unlink_all(*files: Path) -> None:
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --- talking to the server ----------------------------------------------------------------------------------


def ping(socket_path: Path, timeout: float = 1.0) -> bool:
    """Whether a server answers PING on the unix socket (a server still loading its data does not)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(os.fspath(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def shutdown_at(socket_path: Path) -> bool:
    """Ask the server on ``socket_path`` to SHUTDOWN (flushing its AOF); False when it refused or was not there.

    A raw socket rather than redis-py: the server closing the connection is the success signal here, and a client
    library would retry that as an error.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(STOP_TIMEOUT_S)
            sock.connect(os.fspath(socket_path))
            sock.sendall(b"SHUTDOWN\r\n")
            reply = sock.recv(512)
    except OSError as exc:
        logger.warning("SHUTDOWN through %s failed: %s", socket_path, exc)
        return False
    if reply:  # an error reply, e.g. the AOF could not be written; the connection closes without one on success
        logger.warning("SHUTDOWN through %s refused: %s", socket_path, reply.decode(errors="replace").strip())
        return False
    return True


def wait_gone(pid: int, token: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid, token):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _quote(value: Path | str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def valkey_config(paths: DataDir) -> str:
    """The generated valkey.conf: unix socket only, AOF persistence, everything inside the data directory."""
    return "\n".join(
        [
            "# Written by runner each time the embedded server starts; edits here are overwritten.",
            "port 0",
            f"unixsocket {_quote(paths.socket)}",
            "unixsocketperm 700",
            f"dir {_quote(paths.root)}",
            f"pidfile {_quote(paths.valkey_pid)}",
            f"logfile {_quote(paths.valkey_log)}",
            "loglevel notice",
            "daemonize no",
            "databases 16",
            "appendonly yes",
            f"appendfsync {APPENDFSYNC}",
            'appenddirname "appendonlydir"',
            'save ""',
            "",
        ]
    )
