"""How runner's drain scales with worker processes, on one loopback valkey-server this script starts (issue 20).

    .venv/bin/python bench/scaling.py                  # 100 000 jobs per point, medians of 3 runs, a few minutes
    .venv/bin/python bench/scaling.py --quick          # 20 000 jobs per point, one run, under a minute
    .venv/bin/python bench/scaling.py --loop uvloop    # the worker processes on uvloop (pip install -e ".[bench]")

For each count of worker processes (1, 2, 4 and 8; ``--processes`` picks others) the server is emptied and filled
with ``--jobs`` no-op jobs in arq's stored form, and that many runner worker processes at their defaults
(max_jobs 10) drain them. Each point reports jobs/s from the moment the processes are told to go to the last job's
end, the server's CPU (INFO cpu, user + sys) over that time as a share of one core, and its CPU ms per 1 000 jobs;
and the throughput and the server's cost per job against one process's. A run takes every count once, in turn,
so a slow moment of the machine hits them alike; each figure is the median of ``--runs`` runs, and each ratio the
median of the ratios taken inside a run.

Prints a Markdown table. A full run writes the figures to bench/figures/scaling.json (committed: `make docs`
renders them into docs/benchmarks.md); ``--json PATH`` writes them there as well. The committed figures are those
of runner at its defaults, so a full --loop uvloop run writes bench/results/scaling-uvloop.json instead, and
--quick and --smoke runs write only to ``--json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import phases
from harness import BENCH, LOOPS, MAIN_PYTHON, Server, median, package_version, publish, require_loop
from phases import Contender

FULL = {"runs": 3, "jobs": 100_000, "cap_s": 120.0}
QUICK = {"runs": 1, "jobs": 20_000, "cap_s": 60.0}
# only for tests/test_bench_smoke.py: every code path once, numbers meaningless
SMOKE = {"runs": 1, "jobs": 400, "cap_s": 30.0}
PROCESSES = (1, 2, 4, 8)
COMMITTED = BENCH / "figures" / "scaling.json"


def one_run(server: Server, runner: Contender, processes: list[int], s: dict[str, Any], log: Any) -> dict[str, Any]:
    """Every count of processes once, each draining a fresh fill of ``s["jobs"]`` jobs."""
    out = {}
    for k in processes:
        d = phases.drain(server, runner, s["jobs"], cap_s=s["cap_s"], processes=k)
        d["server_cpu_pct"] = d["server_cpu_s"] / d["elapsed_s"] * 100 if d["elapsed_s"] > 0 else float("nan")
        out[str(k)] = d
        log(
            f"{k} process(es): {d['jobs_per_s']:,.0f} jobs/s, server {d['server_cpu_pct']:.0f} % of a core, "
            f"{d['cpu_ms_per_1000']:.0f} ms per 1 000 jobs"
        )
    return out


def summarize(runs: list[dict[str, Any]], processes: list[int]) -> list[dict[str, Any]]:
    """A row per count of processes: medians over the runs, and ratios to the first count taken inside each run."""
    base = str(processes[0])
    rows = []
    for k in processes:
        points = [r[str(k)] for r in runs]
        rows.append(
            {
                "processes": k,
                "jobs_per_s": median([p["jobs_per_s"] for p in points]),
                "vs_first": median([r[str(k)]["jobs_per_s"] / r[base]["jobs_per_s"] for r in runs]),
                "server_cpu_pct": median([p["server_cpu_pct"] for p in points]),
                "server_cpu_ms_per_1000": median([p["cpu_ms_per_1000"] for p in points]),
                "cpu_per_job_vs_first": median(
                    [r[str(k)]["cpu_ms_per_1000"] / r[base]["cpu_ms_per_1000"] for r in runs]
                ),
                "done": min(p["done"] for p in points),
                "capped": any(p["capped"] for p in points),
                "loops": sorted({str(p.get("loop")) for p in points}),
            }
        )
    return rows


def header(f: dict[str, Any]) -> str:
    loop = "asyncio's own event loop" if f["loop"] == "asyncio" else f["loop"]
    return (
        f"`{f['command']}`: runner {f['runner']} on {loop}, {f['server']} on loopback, Python {f['python']}, "
        f"{f['cores']} cores shared with the server and other work (load average {f['load_before']:.1f} before, "
        f"{f['load_after']:.1f} after), {f['wall_s']:.0f} s in all. Each point: {f['jobs']:,} queued no-op jobs "
        f"drained by that many worker processes at their defaults (max_jobs 10), medians of {f['runs']} run(s)."
    )


def table(f: dict[str, Any]) -> str:
    """The Markdown table of a run's rows (bench/figures.py renders the committed run's with it too)."""
    first = f["rows"][0]["processes"]
    per = "1 process" if first == 1 else f"{first} processes"
    lines = [
        f"| worker processes | jobs/s | throughput × {per} | server CPU, % of one core "
        f"| server CPU per 1 000 jobs (ms) | server CPU per job × {per} |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in f["rows"]:
        rate = f"{row['jobs_per_s']:,.0f}{'*' if row['capped'] else ''}"
        lines.append(
            f"| {row['processes']} | {rate} | {row['vs_first']:.2f} | {row['server_cpu_pct']:.0f} % "
            f"| {row['server_cpu_ms_per_1000']:.0f} | {row['cpu_per_job_vs_first']:.2f} |"
        )
    if any(row["capped"] for row in f["rows"]):
        lines += ["", "\\* = stopped at the time cap while jobs remained; the rate is over the jobs done."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 000 jobs per point, one run (under a minute)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests: every path, tiny sizes
    parser.add_argument("--runs", type=int, help="runs per figure (default 3, --quick 1)")
    parser.add_argument("--jobs", type=int, help="jobs queued and drained per point (default 100 000)")
    parser.add_argument(
        "--processes",
        default=",".join(map(str, PROCESSES)),
        help="counts of worker processes, comma-separated; ratios are to the first (default 1,2,4,8)",
    )
    parser.add_argument(
        "--loop", choices=LOOPS, default="asyncio", help="the event loop of runner's workers (default asyncio)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    try:
        processes = [int(k) for k in args.processes.split(",")]
    except ValueError:
        parser.error(f"--processes must be whole numbers separated by commas (got {args.processes!r})")
    if not processes or min(processes) < 1:
        parser.error(f"--processes must be counts of 1 or more (got {args.processes!r})")
    require_loop(args.loop)
    sizes = dict(SMOKE if args.smoke else QUICK if args.quick else FULL)
    for key in ("runs", "jobs"):
        if getattr(args, key):
            sizes[key] = getattr(args, key)
    began = time.monotonic()
    load_before = os.getloadavg()[0]  # other work on the machine moves every figure: the header says how much

    def log(message: str) -> None:
        print(f"  [{time.monotonic() - began:5.0f}s] {message}", file=sys.stderr, flush=True)

    version = package_version(MAIN_PYTHON, "runner-jobs")
    runner = Contender("runner", f"runner {version}", MAIN_PYTHON, "runner", loop=args.loop)
    server = Server()
    try:
        runs = []
        for i in range(sizes["runs"]):
            log(f"run {i + 1} of {sizes['runs']}")
            runs.append(one_run(server, runner, processes, sizes, log))
        server_version = server.version
    finally:
        server.stop()
    command = "python bench/scaling.py" + (" --smoke" if args.smoke else " --quick" if args.quick else "")
    command += "" if args.loop == "asyncio" else f" --loop {args.loop}"
    figures: dict[str, Any] = {
        "command": command,
        "runner": version,
        "server": f"valkey {server_version}",
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "wall_s": round(time.monotonic() - began, 1),
        "loop": args.loop,
        "jobs": sizes["jobs"],
        "runs": sizes["runs"],
        "sizes": sizes,
        "processes": processes,
        "rows": summarize(runs, processes),
        "raw": runs,
    }
    # the committed figures are a full run's at runner's defaults (bench/figures.py renders them into the docs)
    full = not (args.quick or args.smoke)
    keep = (COMMITTED if args.loop == "asyncio" else BENCH / "results" / f"scaling-{args.loop}.json") if full else None
    publish(figures, f"{header(figures)}\n\n{table(figures)}", args.json, keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
