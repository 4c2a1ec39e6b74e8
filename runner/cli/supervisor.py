"""The supervisor behind ``runner start --processes N`` and ``--watch DIR``.

It runs the workers in child processes (``python -m runner.cli start …``), each in its own session so a Ctrl-C
in the terminal reaches only the supervisor, which forwards SIGINT/SIGTERM to every child (a second signal is
forwarded too, and stops the children at once). A child that dies is restarted after a pause that doubles with
each quick death; a child that exits 0 (a finished ``--burst`` run) is not. A child that could not start (exit 3)
on its first launch stops everything, since a restart would fail the same way; a relaunched one that cannot start
is relaunched later, since its config already worked and the cause is likely passing (Redis restarting, say).
With ``--watch`` every child is restarted when a ``.py`` file under the directory changes (the directory is
polled, so no extra package is needed). The change is checked first (``runner validate``, in a subprocess, so it sees
the new code): while the file or its code is broken, the problems are printed once and the running workers are
left alone until the next change. A relaunched child whose worker.toml or code is broken (it exits with
``EXIT_BROKEN``) waits for the next change under ``--watch``, and is retried after the longest pause without it.

Recycling (``max_jobs_per_process``, ``max_memory_per_process``): each child gets the write end of a pipe
(``--supervisor-fd``). A child whose limit is reached stops claiming and writes a ``retire`` line
(runner/cli/recycle.py); the supervisor starts its replacement at once and lets the old child finish its running
jobs and exit by itself. A retiring child is signalled with the others on a stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from runner.cli.exits import EXIT_BROKEN, EXIT_FAILURE, EXIT_OK, EXIT_START

logger = logging.getLogger("runner.supervisor")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 30.0  # a child that lived this long starts its backoff again from the first pause
TICK = 0.1
WATCH_INTERVAL = 0.5


def child_command(
    config_file: Path, *, burst: bool | None, queue: str | None, verbose: bool, log_format: str, processes: int = 1
) -> list[str]:
    """The argv of one child: the same ``start`` without ``--processes``/``--watch``.

    ``--worker-processes`` tells each child how many share the machine, so its job processes take their share of
    the cores.
    """
    command = [sys.executable, "-m", "runner.cli", "start", str(config_file), "--log-format", log_format]
    command.append("--supervised")
    if processes > 1:
        command += ["--worker-processes", str(processes)]
    if burst is not None:
        command.append("--burst" if burst else "--no-burst")
    if queue is not None:
        command += ["--queue", queue]
    if verbose:
        command.append("-v")
    return command


@dataclass
class _Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    done: bool = False
    spawns: int = 0
    broken: bool = False  # exited EXIT_BROKEN; under --watch it waits for the next change
    notices: int | None = None  # the read end of the child's recycling pipe
    pending: bytes = b""


@dataclass
class _Retiring:
    """A child that asked to be recycled: it finishes its jobs and exits while its replacement runs."""

    index: int
    process: subprocess.Popen[bytes]
    notices: int | None


def py_mtimes(directory: Path) -> dict[Path, float]:
    found: dict[Path, float] = {}
    for path in directory.rglob("*.py"):
        try:
            found[path] = path.stat().st_mtime
        except OSError:  # removed while scanning
            continue
    return found


class ProcessSupervisor:
    """Runs ``processes`` copies of ``command`` until told to stop; see the module docstring."""

    def __init__(
        self,
        command: list[str],
        processes: int,
        *,
        watch: Path | None = None,
        check_command: list[str] | None = None,
    ) -> None:
        self.command = command
        self.check_command = check_command
        self.slots = [_Slot(i) for i in range(processes)]
        self.watch = watch
        self.signals = 0
        self.last_signal = signal.SIGTERM
        self.retiring: list[_Retiring] = []
        self.recycled = 0

    # -- children -------------------------------------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        if slot.notices is not None:  # the pipe of a child that died
            os.close(slot.notices)
            slot.notices = None
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        try:
            slot.process = subprocess.Popen(
                [*self.command, "--supervisor-fd", str(write_end)], start_new_session=True, pass_fds=(write_end,)
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        slot.notices, slot.pending = read_end, b""
        slot.started = time.monotonic()
        slot.restart_at = None
        slot.broken = False
        slot.spawns += 1
        logger.info("started worker process %d (pid %d)", slot.index + 1, slot.process.pid)

    def _send(self, sig: int) -> None:
        processes = [slot.process for slot in self.slots] + [old.process for old in self.retiring]
        for process in processes:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # it ended a moment ago
                    os.kill(process.pid, sig)

    def _wait_all(self) -> list[int]:
        codes = []
        for slot in self.slots:
            if slot.process is not None:
                codes.append(slot.process.wait())
        for old in self.retiring:
            old.process.wait()
        self._reap_retiring()
        return codes

    # -- recycling ------------------------------------------------------------------------------------------------

    def _read_notices(self, slot: _Slot) -> None:
        """Act on the ``retire`` lines a child wrote: move it aside and start its replacement."""
        if slot.notices is None or slot.process is None:
            return
        try:
            chunk = os.read(slot.notices, 4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        slot.pending += chunk
        if b"\n" not in slot.pending:
            return
        line, _, slot.pending = slot.pending.partition(b"\n")
        if not line.startswith(b"retire"):
            return
        reason = line.removeprefix(b"retire").strip().decode(errors="replace")
        logger.info(
            "worker process %d (pid %d) retires after %s; starting its replacement",
            slot.index + 1,
            slot.process.pid,
            reason,
        )
        self.retiring.append(_Retiring(slot.index, slot.process, slot.notices))
        self.recycled += 1
        slot.notices = None
        self._spawn(slot)

    def _reap_retiring(self) -> None:
        for old in list(self.retiring):
            code = old.process.poll()
            if code is None:
                continue
            self.retiring.remove(old)
            if old.notices is not None:
                os.close(old.notices)
            log = logger.info if code == EXIT_OK else logger.warning
            log("retired worker process %d (pid %d) exited with code %d", old.index + 1, old.process.pid, code)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        self.last_signal = signal.Signals(signum)
        self._send(signum)

    # -- the loop -------------------------------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until a signal, every child finishing, or a child that cannot start; the exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _loop(self) -> int:
        for slot in self.slots:
            self._spawn(slot)
        mtimes = py_mtimes(self.watch) if self.watch else {}
        next_watch = time.monotonic() + WATCH_INTERVAL
        while True:
            if self.signals:
                return self._stop_all()
            now = time.monotonic()
            self._reap_retiring()
            for slot in self.slots:
                self._read_notices(slot)
                code = self._reap(slot, now)
                if code in (EXIT_START, EXIT_BROKEN) and slot.restart_at is None and not slot.broken:
                    # the first launch could not start: a relaunch would fail the same way
                    logger.error("worker process %d could not start; stopping", slot.index + 1)
                    self._send(signal.SIGTERM)
                    self._wait_all()
                    return EXIT_START
            if all(slot.done for slot in self.slots):
                return EXIT_OK
            if self.watch is not None and now >= next_watch:
                next_watch = now + WATCH_INTERVAL
                current = py_mtimes(self.watch)
                if current != mtimes:
                    changed = sorted(
                        str(p)
                        for p in set(current) ^ set(mtimes)
                        | {p for p in current if p in mtimes and current[p] != mtimes[p]}
                    )
                    mtimes = current
                    if self._code_is_sound(changed):
                        logger.info("changes in %s; restarting workers", ", ".join(changed[:3]))
                        self._restart_all()
            time.sleep(TICK)

    def _code_is_sound(self, changed: list[str]) -> bool:
        """Whether the changed code passes ``runner validate``; its problems are printed once when it does not."""
        if self.check_command is None:
            return True
        result = subprocess.run(self.check_command, stdout=sys.stderr, stderr=subprocess.DEVNULL, check=False)
        if result.returncode == EXIT_OK:
            return True
        logger.error(
            "changes in %s; not restarting: the problems above need fixing (the workers keep running until then)",
            ", ".join(changed[:3]),
        )
        return False

    def _reap(self, slot: _Slot, now: float) -> int | None:
        """Restart a dead child when its pause is over; the child's exit code when it just ended."""
        if slot.done or slot.process is None or slot.broken:
            return None
        if slot.restart_at is not None:
            if now >= slot.restart_at:
                self._spawn(slot)
            return None
        code = slot.process.poll()
        if code is None:
            return None
        if code == EXIT_OK:
            slot.done = True
            logger.info("worker process %d (pid %d) finished", slot.index + 1, slot.process.pid)
            return code
        if code in (EXIT_START, EXIT_BROKEN) and slot.spawns == 1:
            return code
        if code == EXIT_BROKEN and self.watch is not None:
            slot.broken = True  # printed its problems; a relaunch before the code changes would print them again
            logger.error(
                "worker process %d could not start: the problems above need fixing; waiting for a change under %s",
                slot.index + 1,
                self.watch,
            )
            return code
        slot.failures = 1 if now - slot.started >= HEALTHY_AFTER else slot.failures + 1
        delay = min(BACKOFF_FIRST * 2 ** (slot.failures - 1), BACKOFF_MAX)
        if code == EXIT_BROKEN:
            delay = BACKOFF_MAX  # its code changed on disk and is broken: retrying often only repeats the problems
        logger.warning(
            "worker process %d (pid %d) exited with code %d; restarting in %.1fs",
            slot.index + 1,
            slot.process.pid,
            code,
            delay,
        )
        slot.restart_at = now + delay
        return code

    def _restart_all(self) -> None:
        self._send(signal.SIGTERM)
        self._wait_all()
        for slot in self.slots:
            slot.done = False
            slot.failures = 0
            self._spawn(slot)

    def _stop_all(self) -> int:
        logger.info("received %s, stopping %d worker processes", self.last_signal.name, len(self.slots))
        # children already dead (waiting for a restart) or finished do not decide the exit code
        running = [
            s for s in self.slots if s.process is not None and not s.done and s.restart_at is None and not s.broken
        ]
        codes = [slot.process.wait() for slot in running if slot.process is not None]
        self._wait_all()
        bad = [code for code in codes if code not in (EXIT_OK, -signal.SIGTERM, -signal.SIGINT)]
        return EXIT_FAILURE if bad else EXIT_OK
