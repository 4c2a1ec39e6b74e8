"""The dashboard under load, on a loopback valkey-server this script starts (issue 17).

    .venv/bin/python bench/dashboard.py [--quick] [--runs N] [--json PATH]

1. Page times: with 100 000 jobs queued and 10 000 failed in one queue, ``runner dashboard`` (its own process)
   serves each page ``--requests`` times in a row; p50 and p95 of the time from request to the last byte, as a
   client on the same machine sees it (the server's time plus a loopback round trip), and the CPU each request
   costs Redis and the dashboard's process.
2. Drain: one runner worker process drains 20 000 no-op jobs with no dashboard open, with one page open at the
   default refresh (every 5 s), and with five pages refreshing every second (the overview and the queue page in
   turn); medians of ``--runs`` runs of each, interleaved. Everything shares the machine, so the dashboard's own
   CPU competes with the worker's: its per-request costs above say what it would take from a separate host.

A full run writes bench/figures/dashboard.json (committed; `make docs` renders it into docs/dashboard.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import phases
from harness import MAIN_PYTHON, REPO, Server, median, package_version

from runner import RedisSettings, Worker, create_pool
from tests.support.servers import free_port

QUEUE = "arq:queue"
PAGES = [
    ("overview", "/"),
    ("queue page, first", f"/queues/{QUEUE}"),
    ("queue page, position 99 950", f"/queues/{QUEUE}?position=99950"),
    ("queue page, queued only", f"/queues/{QUEUE}?state=queued"),
    ("queue page, a function no job has (reads its budget)", f"/queues/{QUEUE}?function=nothing"),
    ("failed jobs, first page", f"/queues/{QUEUE}/failed"),
    ("failed jobs, position 9 950", f"/queues/{QUEUE}/failed?position=9950"),
    ("a failed job", "/jobs/{failed_id}"),
    ("API overview", "/api/v1/overview"),
]
WATCHERS = {"one page, every 5 s": (1, 5.0), "five pages, every 1 s": (5, 1.0)}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def _fails(ctx: dict[str, Any], n: int) -> None:
    raise ValueError(f"failure {n}")


def fill(server: Server, queued: int, failed: int) -> str:
    """``failed`` jobs failed by a real worker, then ``queued`` no-op jobs waiting; returns a failed job's id."""
    server.flush()

    async def go() -> str:
        # ten thousand failure lines (ERROR, with tracebacks, as arq logs them) are not the point here
        logging.getLogger("runner").setLevel(logging.CRITICAL)
        pool = await create_pool(RedisSettings.from_dsn(server.url))
        try:
            for start in range(0, failed, 5_000):
                await pool.enqueue_many([_spec(n) for n in range(start, min(start + 5_000, failed))])
            worker = Worker(
                [_fails], redis_pool=pool, burst=True, handle_signals=False, max_jobs=100, log_results=False
            )
            await worker.async_run()
            newest = await pool.zrange(pool.key_layout.failed(QUEUE), -1, -1)
            return str(newest[0].decode()) if newest else ""
        finally:
            await pool.aclose()

    failed_id = asyncio.run(go())
    server.fill_arq(queued, "noop")
    return failed_id


def _spec(n: int) -> Any:
    from runner.engine.client import JobSpec

    return JobSpec("_fails", (n,))


class Dashboard:
    """``runner dashboard`` for the bench server, in its own process, ended by its pid."""

    def __init__(self, server: Server, workdir: Path) -> None:
        config = workdir / "worker.toml"
        config.write_text(f'[redis]\nurl = "{server.url}"\n\n[functions.noop]\npath = "bench_tasks:noop"\n')
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
        env["PYTHONPATH"] = str(REPO)
        self.proc = subprocess.Popen(
            [str(MAIN_PYTHON), "-m", "runner.cli", "dashboard", str(config), "--port", str(self.port)],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/static/dashboard.css", timeout=2)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise SystemExit("Error: the dashboard did not start") from None
                time.sleep(0.05)

    def cpu_s(self) -> float:
        """CPU seconds the dashboard's process has used (user and system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)


def page_times(server: Server, dashboard: Dashboard, path: str, requests: int) -> dict[str, float]:
    """p50 / p95 ms of ``requests`` sequential requests of ``path`` (after three to warm up), and the CPU ms per
    request of Redis and of the dashboard's process."""
    times = []
    with httpx.Client(base_url=dashboard.url, timeout=60) as client:
        for _ in range(3):
            client.get(path)
        redis_cpu, board_cpu = server.cpu_s(), dashboard.cpu_s()
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"Error: {path} answered {response.status_code}: {response.text[:200]}")
        redis_cpu, board_cpu = server.cpu_s() - redis_cpu, dashboard.cpu_s() - board_cpu
    return {
        "p50": statistics.median(times),
        "p95": sorted(times)[max(int(len(times) * 0.95) - 1, 0)],
        "redis_cpu_ms": redis_cpu * 1000 / requests,
        "dashboard_cpu_ms": board_cpu * 1000 / requests,
    }


class OpenPages:
    """``tabs`` open pages, each fetching its page every ``refresh_s`` as the refresh script does."""

    def __init__(self, dashboard: Dashboard, tabs: int, refresh_s: float) -> None:
        self.dashboard = dashboard
        self.refresh_s = refresh_s
        self.stop_event = threading.Event()
        self.requests = 0
        self.threads = [threading.Thread(target=self._tab, args=(i,), daemon=True) for i in range(tabs)]

    def _tab(self, index: int) -> None:
        paths = ["/", f"/queues/{QUEUE}"]
        with httpx.Client(base_url=self.dashboard.url, timeout=60, headers={"X-Runner-Partial": "1"}) as client:
            turn = index
            client.get(paths[turn % 2])  # a page is loaded when it is opened, then refreshes
            self.requests += 1
            while not self.stop_event.wait(self.refresh_s):
                client.get(paths[turn % 2])
                self.requests += 1
                turn += 1

    def __enter__(self) -> OpenPages:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(30)


def run(quick: bool, runs: int, requests: int, smoke: bool = False) -> dict[str, Any]:
    queued, failed = (300, 50) if smoke else (20_000, 2_000) if quick else (100_000, 10_000)
    drain_n = 300 if smoke else 5_000 if quick else 20_000
    runner = phases.Contender("runner", "runner", MAIN_PYTHON, "runner")
    load_before = os.getloadavg()[0]
    server = Server()
    workdir = Path(tempfile.mkdtemp(prefix="runner-bench-dashboard-"))
    try:
        failed_id = fill(server, queued, failed)
        dashboard = Dashboard(server, workdir)
        try:
            pages = {
                name: page_times(server, dashboard, path.format(failed_id=failed_id), requests)
                for name, path in PAGES
                if not (smoke and "99 950" in name)
            }
            drains: dict[str, list[float]] = {"no dashboard open": [], **{name: [] for name in WATCHERS}}
            loads = dict.fromkeys(WATCHERS, 0)
            for _ in range(runs):
                drains["no dashboard open"].append(phases.drain(server, runner, drain_n, cap_s=120)["jobs_per_s"])
                for name, (tabs, refresh_s) in WATCHERS.items():
                    with OpenPages(dashboard, tabs, refresh_s) as watching:
                        drains[name].append(phases.drain(server, runner, drain_n, cap_s=120)["jobs_per_s"])
                    loads[name] += watching.requests
        finally:
            dashboard.stop()
        return {
            "runner": package_version(MAIN_PYTHON, "runner-jobs"),
            "server": f"valkey {server.version}",
            "python": platform.python_version(),
            "machine": f"{os.cpu_count()} cores, load average {load_before:.1f} → {os.getloadavg()[0]:.1f}",
            "queued": queued,
            "failed": failed,
            "requests": requests,
            "pages": pages,
            "drain_jobs": drain_n,
            "runs": runs,
            "drain_per_s": {name: median(rates) for name, rates in drains.items()},
            "page_loads_during_drains": loads,
        }
    finally:
        server.stop()


def report(r: dict[str, Any]) -> str:
    lines = [
        f"runner {r['runner']} on {r['server']}, Python {r['python']}, {r['machine']}",
        f"page times with {r['queued']:,} jobs queued and {r['failed']:,} failed, {r['requests']} requests each:",
    ]
    width = max(len(name) for name in r["pages"])
    for name, t in r["pages"].items():
        lines.append(
            f"  {name:<{width}}  p50 {t['p50']:6.1f} ms  p95 {t['p95']:6.1f} ms  "
            f"CPU per request: Redis {t['redis_cpu_ms']:5.2f} ms, dashboard {t['dashboard_cpu_ms']:5.1f} ms"
        )
    lines.append(f"drain of {r['drain_jobs']:,} no-op jobs, one worker process, medians of {r['runs']} runs:")
    alone = r["drain_per_s"]["no dashboard open"]
    for name, rate in r["drain_per_s"].items():
        extra = ""
        if name in r["page_loads_during_drains"]:
            extra = f" ({(rate / alone - 1) * 100:+.1f} %, {r['page_loads_during_drains'][name]} page loads)"
        lines.append(f"  {name:<24}  {rate:8,.0f} jobs/s{extra}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs (20 000 queued, 2 000 failed)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests: every path, tiny sizes
    parser.add_argument("--runs", type=int, default=None, help="drains of each kind (default 3, --quick 1)")
    parser.add_argument("--requests", type=int, default=None, help="requests per page (default 100)")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    quick = args.quick or args.smoke
    requests = args.requests or (3 if args.smoke else 30 if args.quick else 100)
    result = run(quick, args.runs or (1 if quick else 3), requests, args.smoke)
    print(report(result))
    json_path = args.json or (None if quick else Path(__file__).resolve().parent / "figures" / "dashboard.json")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
