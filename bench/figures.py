"""The benchmark figures of docs/benchmarks.md, rendered from the JSON that the full runs write.

    python bench/engine.py     # writes bench/figures/engine.json
    python bench/compare.py    # writes bench/figures/compare.json and docs/assets/compare.svg
    python bench/scaling.py    # writes bench/figures/scaling.json
    python bench/soak.py --servers valkey,redis --runs 3 --length 150 --json > bench/figures/soak.json
    python bench/dashboard.py  # writes bench/figures/dashboard.json
    make docs                  # renders them into docs/benchmarks.md and docs/guarantees.md, between the
                               # pages' "generated" markers

The pages' figures are never typed by hand: tests/docs/test_reference.py checks that they are what these JSON
files render to, so a figure in the docs is always one that a run of bench/ printed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BENCH = Path(__file__).resolve().parent
FIGURES = BENCH / "figures"
ENGINE_JSON = FIGURES / "engine.json"
COMPARE_JSON = FIGURES / "compare.json"
SCALING_JSON = FIGURES / "scaling.json"
SOAK_JSON = FIGURES / "soak.json"
DASHBOARD_JSON = FIGURES / "dashboard.json"
EXECUTORS_JSON = FIGURES / "executors.json"
FLOW_JSON = FIGURES / "flow_control.json"
CLUSTER_JSON = FIGURES / "cluster.json"
_MARKED = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def engine_section(r: dict[str, Any]) -> str:
    """runner on its own: the table of bench/engine.py's figures, and the command and setting that gave them."""
    p = r["pickup_ms"]
    rows = [
        (
            f"no-op throughput, {r['drain_jobs']:,} queued jobs, one worker process at its defaults",
            f"{r['noop_jobs_per_s']:,.0f} jobs/s",
        ),
        ("enqueue, one at a time", f"{r['enqueue_single_per_s']:,.0f} jobs/s"),
        ("enqueue, bulk (`enqueue_many`, 1 000 jobs per call)", f"{r['enqueue_bulk_per_s']:,.0f} jobs/s"),
        (
            "pick-up latency of an idle worker, p50 / p95 / p99",
            f"{p['p50']:.1f} / {p['p95']:.1f} / {p['p99']:.1f} ms",
        ),
        ("commands per job the worker sends while draining", f"{r['client_cmds_per_job']:.2f}"),
        ("commands per job the server runs, scripts' inner calls included", f"{r['server_cmds_per_job']:.1f}"),
        ("server CPU per 1 000 jobs", f"{r['server_cpu_ms_per_1000']:.0f} ms"),
        ("worker peak RSS", f"{r['worker_peak_rss_mb']:.0f} MB"),
    ]
    lines = [
        f"`python bench/engine.py`: runner {r['runner']}, {r['server']}, Python {r['python']}, medians of "
        f"{r['runs']} runs{', ' + r['machine'] if r.get('machine') else ''}.",
        "",
        "| | runner |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    return "\n".join(lines)


def _compare_module() -> Any:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import compare

    return compare


def scaling_section(data: dict[str, Any]) -> str:
    """The drain with 1, 2, 4 and 8 worker processes: bench/scaling.py's header line and table."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import scaling

    return f"{scaling.header(data)}\n\n{scaling.table(data)}"


def compare_section(data: dict[str, Any]) -> str:
    """runner, arq and saq side by side: bench/compare.py's table, header line and targets."""
    compare = _compare_module()
    labels = {key: SimpleNamespace(label=label) for key, label in data["labels"].items()}
    summary, sizes = data["summary"], data["sizes"]
    lines = [
        data["header"],
        "",
        compare.table(summary, labels, sizes),
        "",
        "Issue 6 set these targets; from the same run:",
        "",
        *(f"- {'met' if ok else '**missed**'}: {name}: {value}" for name, ok, value in compare.targets(summary, sizes)),
    ]
    return "\n".join(lines)


def soak_section(data: dict[str, Any]) -> str:
    """bench/soak.py's runs: a row per run and server, the command and machine that gave them, the targets."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import soak

    o, runs = data["options"], data["runs"]
    lines = [
        f"`{data['command']}`: runner {data['runner']}, Python {data['python']}, {data['cores']} cores shared with "
        f"other work (load average {data['load_before']:g} before the runs, {data['load_after']:g} after), "
        f"{data['wall_s'] / 60:.0f} minutes in all. Each run: {o['jobs']:,} jobs over {o['duration']:g} s, "
        f"{o['workers']} workers, lease {o['lease']:g} s, socket_timeout {o['socket_timeout']:g} s; a worker killed "
        f"every {o['kill_every'] * 0.5:g}-{o['kill_every'] * 1.5:g} s, Redis down {o['redis_down']:g} s, storms of "
        f"{o['storm']:g} s, stalls of {o['stall']:g} s, freezes of {o['freeze']:g} s.",
        "",
        "| server | run | lost | duplicated (undocumented) | run concurrently | failed without starting | longest wait "
        "after a death | reruns | kills / freezes / storms / stalls / Redis restarts |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        wait = "-" if r["longest_wait_s"] is None else f"{r['longest_wait_s']:.2f} s"
        faults = " / ".join(str(r[key]) for key in ("worker_kills", "freezes", "storms", "stalls", "redis_restarts"))
        lines.append(
            f"| {r['server']} | {r['run']} | {r['lost']} | {r['duplicated']} ({r['undocumented_duplicates']}) | "
            f"{r['concurrent_runs']} | {r['failed_without_start']} | {wait} | {r['reruns']} | {faults} |"
        )
    missed = [f"run {r['run']} on {r['server']}: {', '.join(soak.missed(r))}" for r in runs if soak.missed(r)]
    verdict = "met in every run" if not missed else "**missed** in " + "; ".join(missed)
    lines += [
        "",
        f"Targets (issue 14): 0 lost, documented duplicates only, 0 run concurrently, 0 failed without starting, "
        f"a dead worker's jobs started again within the lease and a second ({o['lease'] + 1:g} s): {verdict}.",
    ]
    return "\n".join(lines)


def dashboard_section(r: dict[str, Any]) -> str:
    """bench/dashboard.py's page times and drains, with the command and the machine that gave them."""
    lines = [
        f"`python bench/dashboard.py`: runner {r['runner']}, {r['server']}, Python {r['python']}, "
        f"{r['machine']}; the dashboard, the worker, the server and the client all on that machine.",
        "",
        f"Page times with {r['queued']:,} jobs queued and {r['failed']:,} failed in one queue, {r['requests']} "
        "requests each, from request to last byte, and the CPU each request costs:",
        "",
        "| page | p50 | p95 | Redis CPU | dashboard CPU |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {t['p50']:.1f} ms | {t['p95']:.1f} ms | {t['redis_cpu_ms']:.2f} ms | "
            f"{t['dashboard_cpu_ms']:.1f} ms |"
            for name, t in r["pages"].items()
        ),
        "",
        f"Drain of {r['drain_jobs']:,} no-op jobs by one worker process, medians of {r['runs']} runs of each, "
        "interleaved:",
        "",
        "| while | jobs/s | change |",
        "|---|---:|---:|",
    ]
    alone = r["drain_per_s"]["no dashboard open"]
    for name, rate in r["drain_per_s"].items():
        change = "" if name == "no dashboard open" else f"{(rate / alone - 1) * 100:+.1f} %"
        lines.append(f"| {name} | {rate:,.0f} | {change} |")
    return "\n".join(lines)


def executors_section(f: dict[str, Any]) -> str:
    """docs/executors.md's figures: pick-up under CPU load, sync I/O on threads, the process executor's cost."""
    pick, noop = f["pickup_ms"], f["noop_jobs_per_s"]
    met = "met" if pick["process"]["p99"] < 50 else "**missed**"
    lines = [
        f"`python bench/executors.py`: runner {f['runner']}, {f['server']}, Python {f['python']}, {f['cores']} cores "
        f"shared with other work (load average {f['load_before']:g} before the run, {f['load_after']:g} after).",
        "",
        f"| {f['io_jobs']:,} async jobs (10 ms sleeps, 200/s) with {f['cpu_jobs']} CPU jobs of 200 ms among them, "
        "one worker process | pick-up p50 | p99 | max |",
        "|---|---:|---:|---:|",
    ]
    for key, label in (
        ("inline", "CPU jobs as `async def`, on the event loop"),
        ("process", 'CPU jobs on `executor = "process"`'),
    ):
        row = pick[key]
        lines.append(f"| {label} | {row['p50']:.1f} ms | {row['p99']:.1f} ms | {row['max']:.1f} ms |")
    lines += [
        "",
        f"Target: p99 under 50 ms with the process executor: {met} ({pick['process']['p99']:.1f} ms).",
        "",
        f"| {f['drained']:,} jobs of `time.sleep(0.01)`, drained by one worker process (jobs/s) | `def` on the thread "
        "executor, threads = max_jobs | the same job as `async def` with `asyncio.sleep` |",
        "|---|---:|---:|",
    ]
    for n, row in f["sleep_jobs_per_s"].items():
        lines.append(f"| max_jobs {n} | {row['thread']:,.0f} | {row['async']:,.0f} |")
    lines += [
        "",
        f"| {f['drained']:,} no-op jobs, one worker process (jobs/s) | |",
        "|---|---:|",
        f"| on the event loop | {noop['async']:,.0f} |",
        f"| on the process executor, 2 job processes | {noop['process']:,.0f} |",
    ]
    return "\n".join(lines)


def flow_section(f: dict[str, Any]) -> str:
    """docs/flow-control.md's figures: each limit holding across workers, and what each feature costs per job."""
    c, r, fair, p = f["concurrency"], f["rate"], f["fairness"], f["priority"]
    within = abs(c["jobs_per_s"] / c["ideal_per_s"] - 1) <= 0.10
    lines = [
        f"`python bench/flow_control.py`: runner {f['runner']}, {f['server']}, Python {f['python']}, {f['cores']} "
        f"cores shared with other work (load average {f['load_before']:g} before the run, {f['load_after']:g} after; "
        "each row says the load when it was measured).",
        "",
        "| measured | result | target | load |",
        "|---|---|---|---:|",
        f"| `concurrency = 3` on a 50 ms function, 4 worker processes, {c['jobs']:,} jobs: most running at once "
        f"| {c['most_at_once']} | exactly 3 | {c['load']:g} |",
        f"| the same run's throughput | {c['jobs_per_s']:.1f} jobs/s ({c['jobs_per_s'] / c['ideal_per_s']:.0%} of "
        f"3 / 50 ms) | within 10 % of 60 jobs/s: {'met' if within else '**missed**'} | {c['load']:g} |",
        *(
            [
                f"| the same run: how long a job held its slot (its start to its end, as it recorded them), and the "
                f"rest of each slot's cycle, the hand-over to the next job | {c['job_ms']:.1f} ms, "
                f"{c['handover_ms']:.1f} ms | | {c['load']:g} |"
            ]
            if "job_ms" in c
            else []
        ),
        f'| `rate_limit = "50/s"`, 4 worker processes, {r["jobs"]:,} jobs over {r["seconds"]:.1f} s: achieved rate '
        f"| {r['rate_per_s']:.2f}/s | 50/s ± 5 % | {r['load']:g} |",
        f"| the same run: most starts in any one second | {r['most_in_1s']} | at most 55 | {r['load']:g} |",
        f"| {fair['a_jobs']:,} jobs of group A enqueued before {fair['b_jobs']} of group B, `group_concurrency = 2`, "
        f"2 worker processes: A's jobs done when B's last finished | {fair['a_done_before_last_b']} | fewer than 200 "
        f"| {fair['load']:g} |",
        f"| {p['low']:,} low-priority jobs, then {p['high']} high ones while the worker (max_jobs {p['max_jobs']}) is "
        f"busy: low jobs started after the high ones were enqueued, before the last high one started "
        f"| {p['low_started_meanwhile']} | 0 | {p['load']:g} |",
        "",
        f"| {f['cost_jobs']:,} no-op jobs enqueued and drained by one worker | server commands per job "
        "| server CPU per job | jobs/s |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "none": "no flow control (arq's layout)",
        "priority": "`_priority=5`",
        "concurrency": "`concurrency = 1000` (never reached)",
        "global_max_jobs": "`global_max_jobs = 1000` (never reached)",
        "rate_limit": '`rate_limit = "100000/s"` (never reached)',
        "groups": "`_group` over 10 groups, `group_concurrency = 1000`",
    }
    for name, row in f["cost"].items():
        lines.append(
            f"| {labels[name]} | {row['commands_per_job']:.1f} | {row['server_cpu_us_per_job']:.0f} µs "
            f"| {row['jobs_per_s']:,.0f} |"
        )
    return "\n".join(lines)


SECTIONS = {
    "engine": (ENGINE_JSON, engine_section),
    "compare": (COMPARE_JSON, compare_section),
    "scaling": (SCALING_JSON, scaling_section),
    "soak": (SOAK_JSON, soak_section),
    "dashboard": (DASHBOARD_JSON, dashboard_section),
    "executors": (EXECUTORS_JSON, executors_section),
    "flow-control": (FLOW_JSON, flow_section),
}


def cluster_section(f: dict[str, Any]) -> str:
    """docs/cluster.md's figures: drain throughput and server CPU per 1 000 jobs with 1, 2 and 3 shards."""
    lines = [
        f"`python bench/cluster.py`: runner {f['runner']}, {f['server']}, Python {f['python']}, {f['cores']} cores "
        f"shared with other work (load average {f['load_before']:g} before the run, {f['load_after']:g} after); "
        f"{f['jobs']:,} no-op jobs spread evenly over the shards, one burst worker process per shard: by hand, a "
        "queue per shard and a worker on each; with `shards = N`, one queue whose workers each claim from every shard.",
        "",
        "| shards | split | throughput | server CPU per 1 000 jobs (all masters) |",
        "|---:|---|---:|---:|",
    ]
    for row in f["rows"]:
        lines.append(
            f"| {row['shards']} | {row.get('split', 'by hand')} | {row['jobs_per_s']:,.0f} jobs/s "
            f"| {row['server_cpu_ms_per_1000']:,.0f} ms |"
        )
    return "\n".join(lines)


SECTIONS["cluster"] = (CLUSTER_JSON, cluster_section)


def render_page(text: str, page: str) -> str:
    """The page with each ``<!-- generated: NAME -->`` … ``<!-- end generated -->`` part rendered anew."""

    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in SECTIONS:
            raise KeyError(f"{page} names a generated part {name!r} that bench/figures.py does not make")
        path, render = SECTIONS[name]
        if not path.exists():  # no run has written these figures yet: the page keeps what it has
            return match.group(0)
        return f"{match.group(1)}{render(json.loads(path.read_text()))}\n{match.group(4)}"

    return _MARKED.sub(fill, text)
