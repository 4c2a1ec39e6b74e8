"""Flow control measured on a loopback valkey-server this script starts (issue 16); figures for docs/flow-control.md.

    .venv/bin/python bench/flow_control.py [--quick | --smoke] [--json PATH]

1. Concurrency cap: 4 worker processes (max_jobs 10 each), ``concurrency = 3`` on a 50 ms function, 2 000 jobs:
   the most running at once (counted by the jobs themselves, atomically in Redis) and the throughput against
   3 / 50 ms = 60 jobs/s.
2. Rate limit: ``rate_limit = "50/s"`` over 30 s across 4 worker processes: the achieved rate (first to last
   start) and the most starts in any one second (sliding one-second windows over the start times).
3. Fairness: 10 000 jobs of group A enqueued before 10 of group B, ``group_concurrency = 2``, 2 worker processes:
   how many of A's jobs had finished when B's last one did (target: fewer than 200).
4. Priority: one busy worker (max_jobs 5, 10 ms jobs), 10 000 low-priority jobs then 100 high ones: the low jobs
   that started after the high ones were enqueued and before the last high one started (target: none beyond
   those already claimed).
5. Cost: 2 000 no-op jobs enqueued and drained by one worker with no feature, then with each feature on (a cap
   or a rate far above what the run reaches, so only the bookkeeping shows): server commands and server CPU per
   job, and jobs/s.

A full run writes bench/figures/flow_control.json, which ``make docs`` renders into docs/flow-control.md.
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

from harness import BENCH, MAIN_PYTHON, REPO, Server, package_version, publish

FIGURES_JSON = BENCH / "figures" / "flow_control.json"
JOBS = "flow_jobs"


def serve(spec: dict[str, Any]) -> None:
    """Run one worker as the spec says (in its own process), until SIGTERM or, in burst mode, an empty queue."""
    sys.path.insert(0, str(BENCH / "drivers"))
    import logging

    from runner import RedisSettings, Worker, func

    logging.basicConfig(level=logging.WARNING)
    functions = [func(f"{JOBS}:{name}", name=name, **options) for name, options in spec["functions"].items()]
    worker = Worker(
        functions,
        redis_settings=RedisSettings.from_dsn(spec["url"]),
        burst=spec.get("burst", False),
        handle_signals=True,
        poll_delay=0.05,
        max_jobs=spec.get("max_jobs", 10),
        log_results=False,
        **spec.get("queue", {}),
    )
    worker.run()


def start_workers(spec: dict[str, Any], count: int) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(BENCH / "drivers")]))
    return [
        subprocess.Popen(
            [sys.executable, __file__, "--serve", json.dumps(spec)],
            env=env,
            cwd=BENCH,
            start_new_session=True,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def end(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


async def _pool(url: str) -> Any:
    from runner import RedisSettings, create_pool

    return await create_pool(RedisSettings.from_dsn(url))


async def _published(pool: Any) -> None:
    """Wait until a worker has published the queue's limits, so enqueues route by them."""
    while not await pool.exists("runner:flow-spec:arq:queue"):  # noqa: ASYNC110 - a Redis key, no event
        await asyncio.sleep(0.05)


async def _enqueue(pool: Any, function: str, count: int, chunk: int = 500, **options: Any) -> None:
    from runner import JobSpec

    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        await pool.enqueue_many([JobSpec(function, **options) for _ in range(n)])


async def _wait_for(pool: Any, key: str, count: int, cap_s: float) -> None:
    deadline = time.monotonic() + cap_s
    while await pool.llen(key) < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def _floats(values: list[bytes]) -> list[float]:
    return sorted(float(v) for v in values)


async def concurrency_cap(server: Server, jobs: int) -> dict[str, Any]:
    server.flush()
    workers = start_workers({"url": server.url, "functions": {"capped": {"concurrency": 3}}}, 4)
    pool = await _pool(server.url)
    try:
        await _published(pool)
        await _enqueue(pool, "capped", jobs, kwargs={"pause": 0.05})
        await _wait_for(pool, "bench:ends", jobs, cap_s=jobs / 10)
        starts = _floats(await pool.lrange("bench:starts", 0, -1))
        ends = _floats(await pool.lrange("bench:ends", 0, -1))
        most = int(await pool.get("bench:most") or 0)
    finally:
        await pool.aclose()
        end(workers)
    rate = len(ends) / max(ends[-1] - starts[0], 1e-3)
    # every job records one start and one end, so the sums give the mean time a job held its slot without
    # pairing them; the rest of a slot's cycle (3 / rate) is the hand-over from one job to the next
    held_ms = (sum(ends) - sum(starts)) / max(len(ends), 1) * 1000
    return {
        "jobs": len(ends),
        "most_at_once": most,
        "jobs_per_s": rate,
        "ideal_per_s": 3 / 0.05,
        "job_ms": held_ms,
        "handover_ms": 3 / rate * 1000 - held_ms,
    }


async def rate_limit(server: Server, seconds: int) -> dict[str, Any]:
    server.flush()
    workers = start_workers({"url": server.url, "functions": {"paced": {"rate_limit": "50/s"}}}, 4)
    pool = await _pool(server.url)
    try:
        await _published(pool)
        total = 50 * seconds
        await _enqueue(pool, "paced", total)
        await _wait_for(pool, "bench:starts", total, cap_s=seconds * 3)
        starts = _floats(await pool.lrange("bench:starts", 0, -1))
    finally:
        await pool.aclose()
        end(workers)
    # the first second holds the burst the limiter allows at once; the rate is measured over the rest
    span = starts[-1] - starts[0]
    most = max(sum(1 for t in starts[i:] if t < s + 1) for i, s in enumerate(starts))
    return {"jobs": len(starts), "seconds": span, "rate_per_s": (len(starts) - 1) / max(span, 1e-3), "most_in_1s": most}


async def fairness(server: Server, a_jobs: int) -> dict[str, Any]:
    server.flush()
    spec = {"url": server.url, "functions": {"tagged": {"group_concurrency": 2}}}
    pool = await _pool(server.url)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        # the limits are published before the jobs go in, by a first worker that is stopped again at once
        workers = start_workers(spec, 1)
        await _published(pool)
        end(workers)
        await _enqueue(pool, "tagged", a_jobs, kwargs={"tag": "A", "at_end": True}, group="tenant-a")
        await _enqueue(pool, "tagged", 10, kwargs={"tag": "B", "at_end": True}, group="tenant-b")
        workers = start_workers(spec, 2)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            order = [v.split()[0] for v in await pool.lrange("bench:order", 0, -1)]
            if order.count(b"B") == 10:
                break
            await asyncio.sleep(0.05)
    finally:
        await pool.aclose()
        end(workers)
    last_b = max(i for i, tag in enumerate(order) if tag == b"B")
    return {"a_jobs": a_jobs, "b_jobs": 10, "a_done_before_last_b": order[:last_b].count(b"A")}


async def priority(server: Server, low: int, high: int) -> dict[str, Any]:
    server.flush()
    workers = start_workers({"url": server.url, "functions": {"tagged": {}}, "max_jobs": 5}, 1)
    pool = await _pool(server.url)
    try:
        await _enqueue(pool, "tagged", low, kwargs={"tag": "low", "pause": 0.01}, priority=-1)
        while await pool.llen("bench:order") < 20:  # noqa: ASYNC110 - until the worker is busy
            await asyncio.sleep(0.01)
        await _enqueue(pool, "tagged", high, kwargs={"tag": "high", "pause": 0.01}, priority=10)
        enqueued = time.time()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            order = [v.split() for v in await pool.lrange("bench:order", 0, -1)]
            if sum(1 for tag, _ in order if tag == b"high") == high:
                break
            await asyncio.sleep(0.05)
    finally:
        await pool.aclose()
        end(workers)
    last_high = max(float(t) for tag, t in order if tag == b"high")
    overtaken = sum(1 for tag, t in order if tag == b"low" and enqueued < float(t) < last_high)
    return {"low": low, "high": high, "low_started_meanwhile": overtaken, "max_jobs": 5}


FEATURES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    # name: (function options, queue options, enqueue options)
    "none": ({}, {}, {}),
    "priority": ({}, {}, {"priority": 5}),
    "concurrency": ({"concurrency": 1000}, {}, {}),
    "global_max_jobs": ({}, {"global_max_jobs": 1000}, {}),
    "rate_limit": ({"rate_limit": "100000/s"}, {}, {}),
    "groups": ({"group_concurrency": 1000}, {}, {"group": "g"}),
}


async def cost(server: Server, jobs: int) -> dict[str, Any]:
    rows = {}
    for name, (fn_options, queue_options, enqueue_options) in FEATURES.items():
        server.flush()
        spec = {"url": server.url, "functions": {"noop": fn_options}, "queue": queue_options, "burst": True}
        pool = await _pool(server.url)
        try:
            if fn_options or queue_options:
                warm = start_workers({**spec, "burst": False}, 1)
                await _published(pool)
                end(warm)
            cpu0 = server.reset_stats()
            began = time.monotonic()
            groups = enqueue_options.pop("group", None)
            if groups:
                for g in range(10):  # ten groups taking turns
                    await _enqueue(pool, "noop", jobs // 10, group=f"{groups}{g}", **enqueue_options)
            else:
                await _enqueue(pool, "noop", jobs, **enqueue_options)
            enqueue_options["group"] = groups
            workers = start_workers(spec, 1)
            await asyncio.to_thread(workers[0].wait, 600)
            elapsed = time.monotonic() - began
            calls = sum(server.command_calls().values())
            cpu = server.cpu_s() - cpu0
            left = await pool.zcard("arq:queue")
        finally:
            await pool.aclose()
        rows[name] = {
            "commands_per_job": calls / jobs,
            "server_cpu_us_per_job": cpu / jobs * 1e6,
            "jobs_per_s": jobs / elapsed,
            "left": left,
        }
    return rows


async def run(quick: bool, smoke: bool) -> dict[str, Any]:
    sizes = {
        "cap_jobs": 60 if smoke else 500 if quick else 2000,
        "rate_s": 2 if smoke else 10 if quick else 30,
        "a_jobs": 200 if smoke else 2000 if quick else 10_000,
        "low": 200 if smoke else 2000 if quick else 10_000,
        "high": 10 if smoke else 100,
        "cost_jobs": 200 if smoke else 1000 if quick else 2000,
    }
    server = Server()
    try:
        figures: dict[str, Any] = {
            "runner": package_version(MAIN_PYTHON, "runner-jobs"),
            "server": f"valkey {server.version}",
            "python": platform.python_version(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "quick": quick or smoke,
            # the machine is shared: its load says how much of each core this run had
            "load_before": round(os.getloadavg()[0], 1),
        }
        figures["concurrency"] = await concurrency_cap(server, sizes["cap_jobs"])
        figures["concurrency"]["load"] = round(os.getloadavg()[0], 1)
        figures["rate"] = await rate_limit(server, sizes["rate_s"])
        figures["rate"]["load"] = round(os.getloadavg()[0], 1)
        figures["fairness"] = await fairness(server, sizes["a_jobs"])
        figures["fairness"]["load"] = round(os.getloadavg()[0], 1)
        figures["priority"] = await priority(server, sizes["low"], sizes["high"])
        figures["priority"]["load"] = round(os.getloadavg()[0], 1)
        figures["cost"] = await cost(server, sizes["cost_jobs"])
        figures["cost_jobs"] = sizes["cost_jobs"]
        figures["load_after"] = round(os.getloadavg()[0], 1)
        return figures
    finally:
        server.stop()


def report(f: dict[str, Any]) -> str:
    c, r, fair, p = f["concurrency"], f["rate"], f["fairness"], f["priority"]
    lines = [
        f"concurrency = 3 on 50 ms jobs, 4 processes, {c['jobs']} jobs: most at once {c['most_at_once']}, "
        f"{c['jobs_per_s']:.1f} jobs/s of {c['ideal_per_s']:.0f}; a job held its slot {c['job_ms']:.1f} ms, "
        f"hand-over {c['handover_ms']:.1f} ms (load {c['load']})",
        f'rate_limit = "50/s", 4 processes, {r["jobs"]} jobs over {r["seconds"]:.1f}s: {r["rate_per_s"]:.2f}/s, '
        f"most in one second {r['most_in_1s']} (load {r['load']})",
        f"groups: {fair['a_jobs']} of A before {fair['b_jobs']} of B, group_concurrency = 2: "
        f"{fair['a_done_before_last_b']} of A done when B's last finished (load {fair['load']})",
        f"priority: {p['low']} low then {p['high']} high: {p['low_started_meanwhile']} low jobs started between the "
        f"high enqueue and the last high start (load {p['load']})",
        f"cost per job ({f['cost_jobs']} no-op jobs, enqueue + drain, one worker):",
    ]
    for name, row in f["cost"].items():
        lines.append(
            f"  {name:<16} {row['commands_per_job']:.1f} commands, {row['server_cpu_us_per_job']:.0f} µs server CPU, "
            f"{row['jobs_per_s']:,.0f} jobs/s"
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
