"""runner's own figures on a loopback valkey-server this script starts (issue 2).

    .venv/bin/python bench/engine.py [--quick] [--runs N] [--json PATH]

Reports no-op throughput (20 000 queued jobs, one worker process, default settings), enqueue rate (one at a
time, and bulk through ``enqueue_many``), pick-up latency p50/p95/p99 of an idle worker (200 jobs, 20 ms
apart), Redis commands per job on the drain path (client commands, i.e. what the worker and producer send,
and all commands the server ran, scripts' inner calls included), and the worker's peak RSS.
Throughput and enqueue figures are medians of ``--runs`` runs. A full run writes them to bench/figures/engine.json
(committed; `make docs` renders docs/benchmarks.md from it). bench/compare.py holds runner against arq and saq.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import phases
from harness import MAIN_PYTHON, Server, median, package_version


def run(quick: bool, runs: int, smoke: bool = False) -> dict[str, Any]:
    drain_n = 300 if smoke else 5_000 if quick else 20_000
    pickup_n = 3 if smoke else 50 if quick else 200
    runner = phases.Contender("runner", "runner", MAIN_PYTHON, "runner")
    load_before = os.getloadavg()[0]  # other work on the machine moves every figure: say how much there was
    server = Server()
    try:
        drains = [phases.drain(server, runner, drain_n, cap_s=60) for _ in range(runs)]
        counted = phases.drain(server, runner, min(drain_n, 5_000), cap_s=60, monitor=True)
        single = [phases.enqueue(server, runner, "single", drain_n // 4, cap_s=30) for _ in range(runs)]
        bulk = [phases.enqueue(server, runner, "bulk", drain_n, cap_s=60) for _ in range(runs)]
        pick = phases.pickup(server, runner, pickup_n, 0.02)
        return {
            "runner": package_version(MAIN_PYTHON, "runner-jobs"),
            "server": f"valkey {server.version}",
            "python": platform.python_version(),
            "machine": f"{os.cpu_count()} cores, load average {load_before:.1f} → {os.getloadavg()[0]:.1f}",
            "quick": quick,
            "runs": runs,
            "drain_jobs": drain_n,
            "noop_jobs_per_s": median([d["jobs_per_s"] for d in drains]),
            "enqueue_single_per_s": median(single),
            "enqueue_bulk_per_s": median(bulk),
            "pickup_ms": {k: pick[k] * 1000 for k in ("p50", "p95", "p99")},
            "client_cmds_per_job": counted["client_cmds_per_job"],
            "server_cmds_per_job": counted["server_cmds_per_job"],
            "server_cpu_ms_per_1000": median([d["cpu_ms_per_1000"] for d in drains]),
            "worker_peak_rss_mb": max(d["rss_mb"] for d in drains),
        }
    finally:
        server.stop()


def report(r: dict[str, Any]) -> str:
    p = r["pickup_ms"]
    rows = [
        (
            f"no-op throughput ({r['drain_jobs']:,} queued jobs, 1 worker process)",
            f"{r['noop_jobs_per_s']:,.0f} jobs/s",
        ),
        ("enqueue, one at a time", f"{r['enqueue_single_per_s']:,.0f} jobs/s"),
        ("enqueue, bulk (enqueue_many, 1 000 per call)", f"{r['enqueue_bulk_per_s']:,.0f} jobs/s"),
        ("pick-up latency, idle worker p50 / p95 / p99", f"{p['p50']:.2f} / {p['p95']:.2f} / {p['p99']:.2f} ms"),
        ("client commands per job (drain)", f"{r['client_cmds_per_job']:.2f}"),
        ("server commands per job, scripts' calls included", f"{r['server_cmds_per_job']:.1f}"),
        ("server CPU per 1 000 jobs", f"{r['server_cpu_ms_per_1000']:.0f} ms"),
        ("worker peak RSS", f"{r['worker_peak_rss_mb']:.0f} MB"),
    ]
    width = max(len(k) for k, _ in rows)
    head = f"runner {r['runner']} on {r['server']}, Python {r['python']}, medians of {r['runs']} runs"
    return "\n".join([head] + [f"  {k:<{width}}  {v}" for k, v in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs (a few seconds)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests: every path, tiny sizes
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 3, --quick 1)")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    result = run(args.quick or args.smoke, args.runs or (1 if args.quick or args.smoke else 3), args.smoke)
    print(report(result))
    # a full run's figures are committed: docs/benchmarks.md is rendered from them (bench/figures.py, make docs)
    json_path = args.json or (
        None if args.quick or args.smoke else Path(__file__).resolve().parent / "figures" / "engine.json"
    )
    if json_path:
        json_path.parent.mkdir(exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
