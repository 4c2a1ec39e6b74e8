"""runner, arq and saq side by side, on one loopback valkey-server this script starts (issue 6).

    .venv/bin/python bench/compare.py            # the full comparison, about 8 minutes on 2 cores
    .venv/bin/python bench/compare.py --quick    # smaller sizes and one run each, about a minute
    .venv/bin/python bench/compare.py --loop uvloop   # runner's worker and client processes on uvloop

arq 0.28.0 and saq 0.26.4 live in bench/.compare-venv (built on first use: arq pins redis-py < 6). Every
system runs the same jobs, in its own worker processes, against the same server: no-op jobs and 10 ms sleeps.
Jobs to drain are written straight into the server in each system's stored form before the workers start, so
a drain times only the worker. Every figure is the median of ``--runs`` runs (default 3); every ratio is taken
between figures of the same run, and the median of those ratios is reported. Nobody logs job lines.
``--loop uvloop`` runs runner's driver processes on uvloop (``pip install -e ".[bench]"``); arq and saq stay on
asyncio's own loop. The JSON records the loop.

Server CPU per 1 000 jobs is INFO cpu (user + sys) over a phase, per job it handled: the drain's (claims and
finishes) and the one-at-a-time enqueue's; their sum is what a job costs the server from enqueue to outcome.

Prints a Markdown table and the targets of issue 6, writes the figures to bench/figures/compare.json and draws the
chart (docs/assets/compare.svg), both committed: `make docs` renders docs/benchmarks.md from them. --quick writes
bench/results/compare-quick.json and .svg instead, and a full --loop uvloop run bench/results/compare-uvloop.json
and .svg, so the committed figures stay those of the full run at runner's defaults (asyncio's own loop).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import phases
from chart import write_chart
from harness import BENCH, LOOPS, MAIN_PYTHON, Server, ensure_compare_venv, median, package_version, require_loop
from phases import Contender

FULL = {
    "runs": 3,
    "drain": 20_000,
    "drain_cap": 8.0,
    "arq_default_cap": 3.0,
    "sleep": 2_000,
    "sleep_cap": 8.0,
    "single": 5_000,
    "concurrent": 10_000,
    "bulk": 20_000,
    "enqueue_cap": 4.0,
    "pickup": 200,
    "result": 20,
    "counted": 5_000,
    "big": 1_000_000,
    "small": 10_000,
    "big_drain": 10_000,
    "big_cap": 5.0,
}
QUICK = {
    "runs": 1,
    "drain": 5_000,
    "drain_cap": 3.0,
    "arq_default_cap": 1.5,
    "sleep": 500,
    "sleep_cap": 3.0,
    "single": 1_000,
    "concurrent": 2_000,
    "bulk": 5_000,
    "enqueue_cap": 1.5,
    "pickup": 50,
    "result": 10,
    "counted": 1_000,
    "big": 100_000,
    "small": 5_000,
    "big_drain": 2_000,
    "big_cap": 2.0,
}
# only for tests/test_bench_smoke.py: every code path once, numbers meaningless
SMOKE = {
    "runs": 1,
    "drain": 300,
    "drain_cap": 2.0,
    "arq_default_cap": 0.5,
    "sleep": 100,
    "sleep_cap": 2.0,
    "single": 50,
    "concurrent": 100,
    "bulk": 300,
    "enqueue_cap": 1.0,
    "pickup": 3,
    "result": 2,
    "counted": 100,
    "big": 2_000,
    "small": 300,
    "big_drain": 200,
    "big_cap": 1.0,
}
COLUMNS = ["runner", "arq", "arq_tuned", "saq"]


def contenders(compare_python: Path, loop: str = "asyncio") -> dict[str, Contender]:
    """Every system and setting compared; runner's processes on ``loop``, the others always on asyncio's own."""
    arq_v = package_version(compare_python, "arq")
    saq_v = package_version(compare_python, "saq")
    on = "" if loop == "asyncio" else f" on {loop}"
    runner_v = package_version(MAIN_PYTHON, "runner-jobs")
    return {
        "runner": Contender("runner", f"runner {runner_v}{on}", MAIN_PYTHON, "runner", loop=loop),
        "arq": Contender("arq", f"arq {arq_v} defaults", compare_python, "arq"),
        "arq_tuned": Contender(
            "arq_tuned",
            f"arq {arq_v} poll_delay=0 max_jobs=100",
            compare_python,
            "arq",
            {"poll_delay": 0, "max_jobs": 100},
        ),
        "saq": Contender("saq", f"saq {saq_v} defaults", compare_python, "saq"),
        "bare": Contender("bare", "bare loop", MAIN_PYTHON, "bare"),
        "runner100": Contender(
            "runner100", f"runner max_jobs=100{on}", MAIN_PYTHON, "runner", {"max_jobs": 100}, loop=loop
        ),
    }


def concurrency_100(who: Contender) -> dict[str, Any]:
    return {"concurrency": 100} if who.driver == "saq" else {"max_jobs": 100}


def one_run(server: Server, c: dict[str, Contender], s: dict[str, Any], log: Any) -> dict[str, Any]:
    """Every timed figure once, all systems interleaved so a slow moment of the machine hits them alike."""
    r: dict[str, Any] = {}
    for key in ("runner", "arq", "arq_tuned", "saq", "bare", "runner100"):
        cap = s["arq_default_cap"] if key == "arq" else s["drain_cap"]
        r[f"drain.{key}"] = phases.drain(server, c[key], s["drain"], cap_s=cap)
        log(f"drain {key}: {r[f'drain.{key}']['jobs_per_s']:,.0f} jobs/s")
    for key in COLUMNS:
        r[f"sleep.{key}"] = phases.drain(
            server, c[key], s["sleep"], cap_s=s["sleep_cap"], function="sleep10", options=concurrency_100(c[key])
        )
        log(f"10 ms jobs {key}: {r[f'sleep.{key}']['jobs_per_s']:,.0f} jobs/s")
    for key in ("runner", "arq", "saq"):  # the client has no worker settings: arq's figure serves both columns
        single = phases.enqueue_cost(server, c[key], "single", s["single"], cap_s=s["enqueue_cap"])
        r[f"enq_single.{key}"] = single["jobs_per_s"]
        r[f"enq_single_cpu.{key}"] = single["cpu_ms_per_1000"]
        r[f"enq_concurrent.{key}"] = phases.enqueue(
            server, c[key], "concurrent", s["concurrent"], cap_s=s["enqueue_cap"], producers=20
        )
        r[f"enq_bulk.{key}"] = phases.enqueue(server, c[key], "bulk", s["bulk"], cap_s=s["enqueue_cap"] * 3)
        log(
            f"enqueue {key}: {r[f'enq_single.{key}']:,.0f} / {r[f'enq_concurrent.{key}']:,.0f} / "
            f"{r[f'enq_bulk.{key}']:,.0f} jobs/s; server CPU {single['cpu_ms_per_1000']:.0f} ms per 1 000 single"
        )
    for key in COLUMNS:
        r[f"pickup.{key}"] = phases.pickup(server, c[key], s["pickup"], 0.02)
        log(f"pick-up {key}: p50 {r[f'pickup.{key}']['p50'] * 1000:.1f} ms")
    # arq's client polls every 0.5 s; its worker runs tuned here so the two 0.5 s cycles cannot line up by chance
    for key, who in (("runner", c["runner"]), ("arq", c["arq_tuned"]), ("saq", c["saq"])):
        r[f"result.{key}"] = phases.result_latency(server, who, s["result"])
        log(f"result() {key}: p50 {r[f'result.{key}']['p50'] * 1000:.1f} ms")
    for key in ("runner", "arq_tuned", "saq"):
        r[f"two.{key}"] = phases.drain(server, c[key], s["drain"], cap_s=s["drain_cap"], processes=2)
        log(f"2 processes {key}: {r[f'two.{key}']['jobs_per_s']:,.0f} jobs/s")
    for key in ("runner", "arq_tuned", "saq"):
        r[f"small.{key}"] = phases.drain(
            server, c[key], s["big_drain"], cap_s=s["big_cap"], queued=s["small"], limit=s["big_drain"]
        )
    # runner and arq read the same stored form, so they take turns on one big fill
    for keys, filler in ((("runner", "arq_tuned"), c["runner"]), (("saq",), c["saq"])):
        server.flush()
        filler.fill(server, s["big"])
        for key in keys:
            r[f"big.{key}"] = phases.drain(
                server, c[key], s["big_drain"], cap_s=s["big_cap"], limit=s["big_drain"], fill=False
            )
            big, small = r[f"big.{key}"]["jobs_per_s"], r[f"small.{key}"]["jobs_per_s"]
            log(f"{s['big']:,} queued {key}: {big:,.0f} vs {small:,.0f} jobs/s")
    return r


def counted(server: Server, c: dict[str, Contender], s: dict[str, Any], log: Any) -> dict[str, Any]:
    """Commands per job, from a drain watched through MONITOR (untimed: MONITOR slows the server)."""
    out = {}
    for key in ("runner", "arq", "arq_tuned", "saq", "bare"):
        cap = s["arq_default_cap"] * 2 if key == "arq" else 60
        out[key] = phases.drain(server, c[key], s["counted"], cap_s=cap, monitor=True)
        log(f"commands {key}: {out[key]['client_cmds_per_job']:.2f} sent, {out[key]['server_cmds_per_job']:.1f} run")
    return out


def summarize(runs: list[dict[str, Any]], cmds: dict[str, Any]) -> dict[str, Any]:
    """Medians over runs of every figure, and of every ratio taken inside each run."""

    def med(path: str, field: str | None = None, scale: float = 1.0) -> float:
        values = [(r[path][field] if field else r[path]) * scale for r in runs if path in r]
        return median(values)

    def ratio(num: str, den: str, field: str = "jobs_per_s") -> float:
        return median([r[num][field] / r[den][field] for r in runs if r[den][field]])

    t: dict[str, Any] = {"cells": {}, "ratios": {}}
    for key in COLUMNS + ["bare"]:
        cell = t["cells"][key] = {}
        cell["drain"] = med(f"drain.{key}", "jobs_per_s")
        cell["drain_capped"] = any(r[f"drain.{key}"]["capped"] for r in runs)
        cell["rss_mb"] = med(f"drain.{key}", "rss_mb")
        cell["cpu_ms_per_1000"] = med(f"drain.{key}", "cpu_ms_per_1000")
        cell["client_cmds"] = cmds[key]["client_cmds_per_job"]
        cell["server_cmds"] = cmds[key]["server_cmds_per_job"]
        if key == "bare":
            continue
        cell["sleep"] = med(f"sleep.{key}", "jobs_per_s")
        cell["sleep_capped"] = any(r[f"sleep.{key}"]["capped"] for r in runs)
        client = "arq" if key == "arq_tuned" else key
        for kind in ("single", "concurrent", "bulk"):
            cell[f"enq_{kind}"] = med(f"enq_{kind}.{client}")
        # what a job costs the server from its enqueue to its outcome, summed inside each run
        cell["enq_cpu_ms_per_1000"] = med(f"enq_single_cpu.{client}")
        cell["enq_drain_cpu_ms_per_1000"] = median(
            [r[f"enq_single_cpu.{client}"] + r[f"drain.{key}"]["cpu_ms_per_1000"] for r in runs]
        )
        cell["idle_commands_per_s"] = med(f"pickup.{key}", "commands_per_s")
        cell["idle_cpu_pct"] = med(f"pickup.{key}", "server_cpu_pct")
        for p in ("p50", "p95", "p99"):
            cell[f"pickup_{p}_ms"] = med(f"pickup.{key}", p, 1000)
            cell[f"result_{p}_ms"] = med(f"result.{client}", p, 1000)
        if key != "arq":
            cell["two_vs_one"] = ratio(f"two.{key}", f"drain.{key}")
            cell["big_vs_small"] = ratio(f"big.{key}", f"small.{key}")
    ratios = t["ratios"]
    ratios["vs_arq"] = ratio("drain.runner", "drain.arq")
    ratios["vs_arq_tuned"] = ratio("drain.runner", "drain.arq_tuned")
    ratios["vs_saq"] = ratio("drain.runner", "drain.saq")
    ratios["share_of_bare"] = ratio("drain.runner", "drain.bare")
    ratios["share_of_bare_100"] = ratio("drain.runner100", "drain.bare")
    t["cells"]["runner100"] = {"drain": med("drain.runner100", "jobs_per_s")}
    ratios["sleep_vs_arq_tuned"] = ratio("sleep.runner", "sleep.arq_tuned")
    ratios["sleep_vs_saq"] = ratio("sleep.runner", "sleep.saq")
    ratios["single_vs_arq"] = median([r["enq_single.runner"] / r["enq_single.arq"] for r in runs])
    ratios["rss_vs_arq"] = ratio("drain.runner", "drain.arq", "rss_mb")
    return t


def fmt_rate(v: float, capped: bool = False) -> str:
    return f"{v:,.0f}{'*' if capped else ''}"


def table(t: dict[str, Any], c: dict[str, Contender], s: dict[str, Any]) -> str:
    cells = t["cells"]

    def row(name: str, render: Any, keys: list[str] = COLUMNS) -> str:
        return f"| {name} | " + " | ".join(render(cells[k], k) if k in keys else "—" for k in COLUMNS) + " |"

    def ms3(prefix: str) -> Any:
        return lambda x, _k: " / ".join(f"{x[f'{prefix}_{p}_ms']:.1f}" for p in ("p50", "p95", "p99"))

    lines = [
        "| | " + " | ".join(c[k].label for k in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
        row(
            f"drain {s['drain']:,} queued no-op jobs, 1 process (jobs/s)",
            lambda x, _k: fmt_rate(x["drain"], x["drain_capped"]),
        ),
        row(
            f"{s['sleep']:,} × 10 ms jobs, max_jobs / concurrency 100 (jobs/s)",
            lambda x, _k: fmt_rate(x["sleep"], x["sleep_capped"]),
        ),
        row("enqueue one at a time (jobs/s)", lambda x, _k: fmt_rate(x["enq_single"])),
        row("enqueue, 20 concurrent producers (jobs/s)", lambda x, _k: fmt_rate(x["enq_concurrent"])),
        row("enqueue bulk (jobs/s)", lambda x, _k: fmt_rate(x["enq_bulk"])),
        row("pick-up latency, idle worker, p50 / p95 / p99 (ms)", ms3("pickup")),
        row("Job.result() after the job ends, p50 / p95 / p99 (ms)", ms3("result")),
        row(
            "server load during the pick-up run: commands/s, CPU % of a core",
            lambda x, _k: f"{x['idle_commands_per_s']:,.0f}, {x['idle_cpu_pct']:.1f} %",
        ),
        row("client commands per job (drain)", lambda x, _k: f"{x['client_cmds']:.2f}"),
        row("server commands per job, scripts' calls included", lambda x, _k: f"{x['server_cmds']:.1f}"),
        row("server CPU per 1 000 jobs, claim + finish (ms)", lambda x, _k: f"{x['cpu_ms_per_1000']:.0f}"),
        *(
            [
                row(
                    "server CPU per 1 000 jobs, enqueue + claim + finish (ms)",
                    lambda x, _k: f"{x['enq_drain_cpu_ms_per_1000']:.0f}",
                )
            ]
            # figures of a run before the enqueue's cost was measured have no such row
            if "enq_drain_cpu_ms_per_1000" in cells["runner"]
            else []
        ),
        row("worker peak RSS (MB)", lambda x, _k: f"{x['rss_mb']:.0f}"),
        row(
            "2 worker processes vs 1 (throughput ×)",
            lambda x, _k: f"{x['two_vs_one']:.2f}",
            ["runner", "arq_tuned", "saq"],
        ),
        row(
            f"{s['big']:,} queued vs {s['small']:,} (throughput ×)",
            lambda x, _k: f"{x['big_vs_small']:.2f}",
            ["runner", "arq_tuned", "saq"],
        ),
    ]
    bare = cells["bare"]
    lines.append("")
    lines.append(
        f"Bare loop (claim, unpickle, run, store the result; one script call per 100 jobs): "
        f"{bare['drain']:,.0f} jobs/s, {bare['client_cmds']:.2f} client / {bare['server_cmds']:.1f} server "
        f"commands per job. runner reaches {t['ratios']['share_of_bare']:.0%} of it at its defaults (max_jobs=10), "
        f"{t['ratios']['share_of_bare_100']:.0%} with max_jobs=100 ({t['cells']['runner100']['drain']:,.0f} jobs/s)."
    )
    return "\n".join(lines)


def targets(t: dict[str, Any], s: dict[str, Any]) -> list[tuple[str, bool, str]]:
    r, cells = t["ratios"], t["cells"]
    run = cells["runner"]
    big = run["big_vs_small"]
    return [
        ("throughput ≥ 40× arq defaults", r["vs_arq"] >= 40, f"{r['vs_arq']:.1f}×"),
        ("throughput ≥ 4× arq tuned", r["vs_arq_tuned"] >= 4, f"{r['vs_arq_tuned']:.1f}×"),
        ("throughput ≥ 3× saq", r["vs_saq"] >= 3, f"{r['vs_saq']:.1f}×"),
        (
            "≥ 60 % of the bare loop",
            max(r["share_of_bare"], r["share_of_bare_100"]) >= 0.6,
            f"{r['share_of_bare']:.0%} (max_jobs=100: {r['share_of_bare_100']:.0%})",
        ),
        ("pick-up p50 ≤ 2 ms", run["pickup_p50_ms"] <= 2, f"{run['pickup_p50_ms']:.2f} ms"),
        ("pick-up p99 ≤ 10 ms", run["pickup_p99_ms"] <= 10, f"{run['pickup_p99_ms']:.2f} ms"),
        (
            "≤ 3 commands per job on the drain path",
            run["client_cmds"] <= 3,
            f"{run['client_cmds']:.2f} sent by the worker ({run['server_cmds']:.1f} run inside scripts and all)",
        ),
        ("single enqueue ≥ 2× arq", r["single_vs_arq"] >= 2, f"{r['single_vs_arq']:.1f}×"),
        ("bulk enqueue ≥ 25 000 jobs/s", run["enq_bulk"] >= 25_000, f"{run['enq_bulk']:,.0f} jobs/s"),
        ("worker RSS no larger than arq's", r["rss_vs_arq"] <= 1.0, f"{r['rss_vs_arq']:.2f}× arq's"),
        (
            f"flat cost per job, {s['small']:,} → {s['big']:,} queued (within 20 %)",
            abs(big - 1) <= 0.2,
            f"{big:.2f}× the throughput",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one run each (about a minute)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, help="runs per figure (default 3, --quick 1)")
    parser.add_argument("--chart", type=Path, help="where the SVG chart goes")
    parser.add_argument("--json", type=Path, help="where the raw figures go (default bench/results/compare.json)")
    parser.add_argument(
        "--loop", choices=LOOPS, default="asyncio", help="the event loop of runner's processes (default asyncio)"
    )
    args = parser.parse_args()
    require_loop(args.loop)
    sizes = dict(SMOKE if args.smoke else QUICK if args.quick else FULL)
    args.quick = args.quick or args.smoke
    if args.runs:
        sizes["runs"] = args.runs
    began = time.monotonic()
    load_before = os.getloadavg()[0]  # other work on the machine moves every figure: the header says how much

    def log(message: str) -> None:
        print(f"  [{time.monotonic() - began:5.0f}s] {message}", file=sys.stderr, flush=True)

    compare_python = ensure_compare_venv()
    c = contenders(compare_python, args.loop)
    server = Server()
    try:
        runs = []
        for i in range(sizes["runs"]):
            log(f"run {i + 1} of {sizes['runs']}")
            runs.append(one_run(server, c, sizes, log))
        cmds = counted(server, c, sizes, log)
        server_version = server.version
    finally:
        server.stop()
    t = summarize(runs, cmds)
    command = "python bench/compare.py" + (" --smoke" if args.smoke else " --quick" if args.quick else "")
    command += "" if args.loop == "asyncio" else f" --loop {args.loop}"
    header = (
        f"`{command}` — {sizes['runs']} run(s), valkey {server_version} on loopback, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores, load average {load_before:.1f} → "
        f"{os.getloadavg()[0]:.1f}, {time.monotonic() - began:.0f} s in all"
        f"{'' if args.loop == 'asyncio' else f', runner on {args.loop}'}. "
        "* = stopped at the time cap while jobs remained; the rate is over the jobs done."
    )
    print(header)
    print()
    print(table(t, c, sizes))
    print()
    print("Targets (issue 6):")
    for name, ok, value in targets(t, sizes):
        print(f"  [{'met' if ok else 'MISSED'}] {name}: {value}")
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    # a full run's figures are committed: docs/benchmarks.md is rendered from them (bench/figures.py, make docs);
    # they are runner's at its defaults, so a full --loop uvloop run's go to bench/results/ like a --quick run's
    stem = "compare-quick" if args.quick else None if args.loop == "asyncio" else f"compare-{args.loop}"
    json_path = args.json or (results_dir / f"{stem}.json" if stem else BENCH / "figures" / "compare.json")
    json_path.parent.mkdir(exist_ok=True)
    labels = {key: c[key].label for key in c}
    figures = {
        "header": header,
        "labels": labels,
        "loop": args.loop,
        "sizes": sizes,
        "runs": runs,
        "commands": cmds,
        "summary": t,
    }
    json_path.write_text(json.dumps(figures, indent=1) + "\n")
    chart_path = args.chart or (
        results_dir / f"{stem}.svg" if stem else BENCH.parent / "docs" / "assets" / "compare.svg"
    )
    write_chart(chart_path, t, {k: c[k].label for k in c}, sizes, header_note=command)
    print(f"\nchart: {chart_path}  figures: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
