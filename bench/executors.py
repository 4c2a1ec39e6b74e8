"""Executors measured on a loopback valkey-server this script starts (issue 15); figures for docs/executors.md.

    .venv/bin/python bench/executors.py [--quick | --smoke] [--json PATH]

1. Pick-up under CPU load: 1 000 async I/O jobs (10 ms sleeps, 200 per second) with 20 CPU-bound jobs (200 ms of
   pure Python each) among them, one worker process (max_jobs 50): the async jobs' pick-up latency p50 / p99
   with the CPU jobs on the event loop (0.1's only choice) and on the process executor. Target: p99 < 50 ms.
2. Sync I/O on the thread executor: 2 000 ``time.sleep(0.01)`` jobs drained with threads = max_jobs = 10, 50, 200,
   against the same jobs written async (``await asyncio.sleep(0.01)``) at the same max_jobs.
3. Process executor overhead: 2 000 no-op jobs drained on the event loop, and on the process executor (2
   subprocesses), jobs/s.

A full run writes bench/figures/executors.json, which ``make docs`` renders into docs/executors.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import BENCH, MAIN_PYTHON, REPO, Server, package_version, percentile, publish

FIGURES_JSON = BENCH / "figures" / "executors.json"
JOBS = "executor_jobs"


# -- the worker process ----------------------------------------------------------------------------------------------


def serve(spec: dict[str, Any]) -> None:
    """Run one worker as the spec says (in its own process), until the queue is empty or SIGTERM."""
    sys.path.insert(0, str(BENCH / "drivers"))
    import logging

    from runner import RedisSettings, Worker, func

    logging.basicConfig(level=logging.WARNING)
    functions = [func(f"{JOBS}:{name}", executor=executor) for name, executor in spec["functions"]]
    options = {key: spec[key] for key in ("max_jobs", "threads", "processes") if spec.get(key)}
    worker = Worker(
        functions,
        redis_settings=RedisSettings.from_dsn(spec["url"]),
        burst=spec["burst"],
        handle_signals=True,
        poll_delay=0.05,
        **options,
    )
    worker.run()


def start_worker(spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(BENCH / "drivers")]))
    return subprocess.Popen(
        [sys.executable, __file__, "--serve", json.dumps(spec)], env=env, cwd=BENCH, start_new_session=True
    )


def end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


# -- the phases ------------------------------------------------------------------------------------------------------


async def _pool(url: str) -> Any:
    from runner import RedisSettings, create_pool

    return await create_pool(RedisSettings.from_dsn(url))


async def _until_ready(pool: Any, name: str, args: tuple[Any, ...]) -> None:
    """Enqueue one job and wait for its result: the worker (and its job subprocesses) are up."""
    job = await pool.enqueue_job(name, *args)
    await job.result(timeout=120)


async def pickup(server: Server, cpu_executor: str, io_jobs: int, cpu_jobs: int) -> dict[str, float]:
    """Pick-up latency of paced async jobs while CPU-bound jobs run inline or on the process executor."""
    server.flush()
    cpu_name = "cpu_inline" if cpu_executor == "async" else "cpu"
    spec = {
        "url": server.url,
        "functions": [("io_job", "async"), (cpu_name, cpu_executor)],
        "max_jobs": 50,
        "burst": False,
    }
    worker = start_worker(spec)
    pool = await _pool(server.url)
    try:
        await _until_ready(pool, cpu_name, (0.01,))
        every = max(io_jobs // cpu_jobs, 1)
        jobs, crunching = [], []
        began = time.monotonic()
        for i in range(io_jobs):
            if i % every == every // 2 and (i // every) < cpu_jobs:
                crunching.append(await pool.enqueue_job(cpu_name, 0.2))
            jobs.append(await pool.enqueue_job("io_job", time.time()))
            # 200 jobs a second, on a schedule rather than after each enqueue, so a slow enqueue does not shift it
            await asyncio.sleep(max(began + (i + 1) / 200 - time.monotonic(), 0))
        delays = [await job.result(timeout=120) for job in jobs]
        for job in crunching:  # so the stop cancels nothing
            await job.result(timeout=120)
    finally:
        await pool.aclose()
        end(worker)
    return {"p50": percentile(delays, 50), "p99": percentile(delays, 99), "max": max(delays)}


async def drain(server: Server, function: str, executor: str, jobs: int, **options: int) -> float:
    """Jobs per second of one burst worker draining ``jobs`` queued jobs (first start to last finish)."""
    from runner import JobSpec

    server.flush()
    pool = await _pool(server.url)
    try:
        queued = await pool.enqueue_many([JobSpec(function) for _ in range(jobs)])
        spec = {"url": server.url, "functions": [(function, executor)], "burst": True, **options}
        worker = start_worker(spec)
        try:
            await asyncio.to_thread(worker.wait, 600)
        finally:
            end(worker)
        infos = [await job.result_info() for job in queued if job is not None]
    finally:
        await pool.aclose()
    done = [info for info in infos if info is not None and info.success]
    first = min(info.start_time for info in done)
    last = max(info.finish_time for info in done)
    return len(done) / max((last - first).total_seconds(), 1e-3)


async def run(quick: bool, smoke: bool) -> dict[str, Any]:
    io_jobs, cpu_jobs = (50, 2) if smoke else (300, 6) if quick else (1000, 20)
    drained = 40 if smoke else 500 if quick else 2000
    thread_counts = (10, 50) if smoke else (10, 50, 200)
    server = Server()
    try:
        figures: dict[str, Any] = {
            "runner": package_version(MAIN_PYTHON, "runner-jobs"),
            "server": f"valkey {server.version}",
            "python": platform.python_version(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "quick": quick or smoke,
            "io_jobs": io_jobs,
            "cpu_jobs": cpu_jobs,
            "drained": drained,
            # the machine is shared: its load says how much of each core this run had
            "load_before": round(os.getloadavg()[0], 1),
        }
        figures["pickup_ms"] = {
            "inline": await pickup(server, "async", io_jobs, cpu_jobs),
            "process": await pickup(server, "process", io_jobs, cpu_jobs),
        }
        figures["sleep_jobs_per_s"] = {
            str(n): {
                "thread": await drain(server, "sync_sleep", "thread", drained, max_jobs=n, threads=n),
                "async": await drain(server, "async_sleep", "async", drained, max_jobs=n),
            }
            for n in thread_counts
        }
        figures["noop_jobs_per_s"] = {
            "async": await drain(server, "async_noop", "async", drained),
            "process": await drain(server, "noop", "process", drained, processes=2),
        }
        figures["load_after"] = round(os.getloadavg()[0], 1)
        return figures
    finally:
        server.stop()


def report(f: dict[str, Any]) -> str:
    pick = f["pickup_ms"]
    lines = [
        f"pick-up of {f['io_jobs']} async jobs with {f['cpu_jobs']} CPU jobs of 200 ms among them, p50 / p99 / max:",
        f"  CPU jobs on the event loop:       {pick['inline']['p50']:.1f} / {pick['inline']['p99']:.1f} / "
        f"{pick['inline']['max']:.1f} ms",
        f"  CPU jobs on the process executor: {pick['process']['p50']:.1f} / {pick['process']['p99']:.1f} / "
        f"{pick['process']['max']:.1f} ms (target p99 < 50 ms: {'met' if pick['process']['p99'] < 50 else 'MISSED'})",
        f"{f['drained']} sleep(0.01) jobs, jobs/s:",
    ]
    for n, row in f["sleep_jobs_per_s"].items():
        lines.append(f"  max_jobs {n:>3}: def on {n} threads {row['thread']:,.0f}, async def {row['async']:,.0f}")
    noop = f["noop_jobs_per_s"]
    lines.append(
        f"{f['drained']} no-op jobs, jobs/s: async {noop['async']:,.0f}, process executor {noop['process']:,.0f}"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs; writes no figures file")
    parser.add_argument("--smoke", action="store_true", help="tiny runs for the test suite")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(json.loads(args.serve))
        return 0
    figures = asyncio.run(run(args.quick, args.smoke))
    publish(figures, report(figures), args.json, None if args.quick or args.smoke else FIGURES_JSON)
    return 0


if __name__ == "__main__":
    sys.exit(main())
