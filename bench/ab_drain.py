"""A/B of one worker's drain between two checkouts of runner, in alternating runs on one loopback valkey-server.

    .venv/bin/python bench/ab_drain.py A_DIR B_DIR [--rounds 6] [--jobs 30000] [--max-jobs 10]
    .venv/bin/python bench/ab_drain.py . .@uvloop          # one checkout on asyncio's loop against uvloop's

Each run queues ``--jobs`` no-op jobs in arq's format, then drains them with one burst worker in a fresh process
whose ``runner`` comes from the checkout (PYTHONPATH). The runs alternate A, B, A, B, … so that a change in the
machine's load falls on both sides; the medians are printed: jobs/s, the worker's CPU per job (its own process
time, system calls included) and the server's CPU per job. A change to the worker's hot path is kept when this
shows it, before the full benches (bench/engine.py, bench/compare.py) are run for the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import BENCH, Server


async def _drain(url: str, max_jobs: int) -> dict[str, object]:
    loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    sys.path.insert(0, os.getcwd())  # the checkout under test, ahead of the one harness.py put first
    import runner
    from runner import RedisSettings, Worker, create_pool, func

    async def noop(ctx: object) -> None:
        return None

    pool = await create_pool(RedisSettings.from_dsn(url))
    worker = Worker([func(noop, name="noop")], redis_pool=pool, burst=True, handle_signals=False, max_jobs=max_jobs)
    wall, cpu = time.perf_counter(), time.process_time()
    await worker.async_run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await pool.aclose()
    return {"done": worker.jobs_complete, "wall_s": wall, "cpu_s": cpu, "runner": runner.__file__, "loop": loop}


def one_run(side: str, server: Server, jobs: int, max_jobs: int) -> dict[str, float]:
    path, _, loop = side.partition("@")
    checkout = Path(path).resolve()
    server.flush()
    server.fill_arq(jobs)
    before = server.reset_stats()
    env = dict(os.environ, PYTHONPATH=str(checkout))
    spec = json.dumps({"url": server.url, "max_jobs": max_jobs, "loop": loop or "asyncio"})
    out = subprocess.run(
        [sys.executable, __file__, "--drain", spec], env=env, cwd=checkout, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not str(result["runner"]).startswith(str(checkout)):
        raise SystemExit(f"the run imported {result['runner']}, not the checkout {checkout}")
    if result["loop"] != (loop or "asyncio"):
        raise SystemExit(f"the run was on {result['loop']}'s loop, not {loop}'s")
    done = result["done"]
    return {
        "jobs_per_s": done / result["wall_s"],
        "worker_us": result["cpu_s"] / done * 1e6,
        "server_us": (server.cpu_s() - before) / done * 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", nargs="?", help="a checkout, optionally with @uvloop")
    parser.add_argument("b", nargs="?", help="a checkout, optionally with @uvloop")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=30_000)
    parser.add_argument("--max-jobs", type=int, default=10)
    parser.add_argument("--drain", help=argparse.SUPPRESS)  # one run, in its own process
    args = parser.parse_args()
    if args.drain:
        spec = json.loads(args.drain)
        factory = None
        if spec["loop"] == "uvloop":
            import uvloop

            factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            print(json.dumps(runner.run(_drain(spec["url"], spec["max_jobs"]))))
        return 0
    if args.a is None or args.b is None:
        parser.error("give two checkouts to compare")
    sides = {"A": args.a, "B": args.b}
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    server = Server()
    try:
        for round_ in range(args.rounds):
            for side, checkout in sides.items():
                run = one_run(checkout, server, args.jobs, args.max_jobs)
                runs[side].append(run)
                print(
                    f"round {round_ + 1} {side}: {run['jobs_per_s']:,.0f} jobs/s, worker {run['worker_us']:.1f} µs "
                    f"and server {run['server_us']:.1f} µs CPU per job",
                    flush=True,
                )
    finally:
        server.stop()
    print(f"medians of {args.rounds} alternating runs, {args.jobs:,} jobs each, max_jobs {args.max_jobs}:")
    for side, checkout in sides.items():
        med = {k: statistics.median(r[k] for r in runs[side]) for k in runs[side][0]}
        print(
            f"  {side} {checkout}: {med['jobs_per_s']:,.0f} jobs/s, worker {med['worker_us']:.1f} µs, "
            f"server {med['server_us']:.1f} µs CPU per job"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    raise SystemExit(main())
