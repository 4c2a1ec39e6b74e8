"""The supervisor: ``python -m runner.embedded serve DIR`` runs valkey-server while any registered process lives."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runner.embedded.files import (
    CHECK_INTERVAL_S,
    LINGER_S,
    SERVER_UMASK,
    STOP_TIMEOUT_S,
    DataDir,
    live_clients,
    locked,
    ping,
    read_pid_file,
    shutdown_at,
    unlink_all,
    valkey_config,
    write_pid_file,
    write_private,
)

logger = logging.getLogger("runner.embedded")


def _die_with_parent() -> None:
    """In the valkey-server child: get SIGTERM (a clean shutdown) if the supervisor is killed."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


class ServerSupervisor:
    """Runs valkey-server for one data directory until no registered process is left (or SIGTERM)."""

    def __init__(self, paths: DataDir, binary: Path, linger: float) -> None:
        self.paths = paths
        self.binary = binary
        self.linger = linger
        self.stop_requested = False
        self.proc: subprocess.Popen[bytes] | None = None

    def _on_signal(self, signum: int, _frame: object) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        self.stop_requested = True

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        write_pid_file(self.paths.supervisor_pid, os.getpid())
        write_private(self.paths.conf, valkey_config(self.paths))
        linux = sys.platform.startswith("linux")
        self.proc = subprocess.Popen(
            [str(self.binary), str(self.paths.conf)],
            stdin=subprocess.DEVNULL,
            cwd=self.paths.root,
            preexec_fn=_die_with_parent if linux else None,  # safe: this process has no threads
        )
        logger.info("started valkey-server pid %d for %s (linger %gs)", self.proc.pid, self.paths.root, self.linger)
        while not ping(self.paths.socket):
            if self.proc.poll() is not None:
                logger.error("valkey-server exited with code %s while starting", self.proc.returncode)
                self._clean_up()
                return 1
            if self.stop_requested:
                return self._shut_down()
            time.sleep(0.01)
        return self._watch()

    def _watch(self) -> int:
        assert self.proc is not None
        last_used = time.time()
        while True:
            time.sleep(CHECK_INTERVAL_S)
            if self.proc.poll() is not None:
                logger.error("valkey-server exited unexpectedly with code %s", self.proc.returncode)
                with locked(self.paths):
                    self._clean_up()
                return 1
            if self.stop_requested:
                return self._shut_down()
            if live_clients(self.paths):
                last_used = time.time()
                continue
            # a process that came and went between two looks still counts: registering and releasing
            # both change the clients directory, and so its mtime
            if time.time() - max(last_used, self._clients_changed()) < self.linger:
                continue
            with locked(self.paths):
                # a process may have registered while we waited for the lock
                if live_clients(self.paths) and not self.stop_requested:
                    last_used = time.time()
                    continue
                logger.info("no process uses the server any more, shutting down")
                return self._shut_down(have_lock=True)

    def _clients_changed(self) -> float:
        try:
            return self.paths.clients.stat().st_mtime
        except OSError:
            return 0.0

    def _shut_down(self, *, have_lock: bool = False) -> int:
        if not have_lock:
            with locked(self.paths):
                return self._shut_down(have_lock=True)
        assert self.proc is not None
        if self.proc.poll() is None and not shutdown_at(self.paths.socket):
            self.proc.terminate()  # SIGTERM makes valkey shut down the same clean way
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.error("valkey-server did not stop within %gs, killing it", STOP_TIMEOUT_S)
            self.proc.kill()
            self.proc.wait()
        logger.info("valkey-server stopped with code %s", self.proc.returncode)
        self._clean_up()
        return 0

    def _clean_up(self) -> None:
        unlink_all(self.paths.socket, self.paths.valkey_pid)
        mine = read_pid_file(self.paths.supervisor_pid)
        if mine is not None and mine[0] == os.getpid():
            unlink_all(self.paths.supervisor_pid)


def main(argv: list[str]) -> int:
    """``python -m runner.embedded serve DIR --linger S --binary PATH``: detach, then supervise."""
    parser = argparse.ArgumentParser(prog="python -m runner.embedded", description="Supervise an embedded server.")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("data_dir")
    parser.add_argument("--linger", type=float, default=LINGER_S)
    parser.add_argument("--binary", required=True)
    args = parser.parse_args(argv)
    paths = DataDir.of(args.data_dir)
    binary = Path(args.binary)
    os.umask(SERVER_UMASK)  # this process and valkey-server only write into the private data directory
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(message)s", stream=sys.stderr)
    child = os.fork()
    if child:
        # the caller waits for this process, then reads the supervisor's pid; the supervisor itself is
        # re-parented to init, so it never lingers as a zombie of a long-running caller
        write_pid_file(paths.supervisor_pid, child)
        os._exit(0)
    return ServerSupervisor(paths, binary, args.linger).run()
