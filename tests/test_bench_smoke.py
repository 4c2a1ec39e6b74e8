"""The bench scripts still run end to end (tiny sizes; no figure is checked, only that each was measured)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"

pytestmark = pytest.mark.slow


def docs_figures() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        import figures
    finally:
        sys.path.remove(str(BENCH))
    return figures


def run_script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_engine_bench_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "engine.json"
    done = run_script(str(BENCH / "engine.py"), "--smoke", "--json", str(out), timeout=120)
    figures = json.loads(out.read_text())
    for key in (
        "noop_jobs_per_s",
        "enqueue_single_per_s",
        "enqueue_bulk_per_s",
        "server_cmds_per_job",
        "worker_peak_rss_mb",
    ):
        assert figures[key] > 0, key
    assert set(figures["pickup_ms"]) == {"p50", "p95", "p99"}
    # the worker sends less than one command per job on the drain path: claims and finishes are batched
    assert 0 < figures["client_cmds_per_job"] < 1
    assert "pick-up latency" in done.stdout
    # the docs render the same JSON into docs/benchmarks.md (bench/figures.py)
    section = docs_figures().engine_section(figures)
    assert section.count("\n| ") == 9 and "nan" not in section


@pytest.mark.timeout(600)  # the first run builds bench/.compare-venv (arq and saq from PyPI)
def test_compare_bench_fills_the_table_and_draws_the_chart(tmp_path: Path) -> None:
    out, chart = tmp_path / "compare.json", tmp_path / "compare.svg"
    done = run_script(str(BENCH / "compare.py"), "--smoke", "--json", str(out), "--chart", str(chart), timeout=400)
    figures = json.loads(out.read_text())
    cells = figures["summary"]["cells"]
    assert set(cells) == {"runner", "arq", "arq_tuned", "saq", "bare", "runner100"}
    # runner's processes ran on the loop the figures say (the driver reports the loop it found itself on)
    assert figures["loop"] == "asyncio" and figures["runs"][0]["drain.runner"]["loop"] == "asyncio"
    assert cells["runner100"]["drain"] > 0
    for name in ("runner", "arq", "arq_tuned", "saq", "bare"):
        assert cells[name]["drain"] > 0, name
        assert cells[name]["client_cmds"] > 0, name
    for name in ("runner", "arq", "arq_tuned", "saq"):
        assert cells[name]["sleep"] > 0, name
        assert cells[name]["enq_bulk"] > 0, name
        assert cells[name]["pickup_p50_ms"] > 0, name
        assert cells[name]["result_p50_ms"] > 0, name
        # a job's server cost from enqueue to outcome: the single enqueue's CPU per 1 000 jobs plus the drain's
        assert cells[name]["enq_cpu_ms_per_1000"] > 0, name
        assert cells[name]["enq_drain_cpu_ms_per_1000"] > cells[name]["cpu_ms_per_1000"], name
    # the table has a row per metric and a column per system, and nothing is left blank or NaN
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 15
    assert any(line.startswith("| server CPU per 1 000 jobs, enqueue + claim + finish (ms) |") for line in table)
    assert all(line.count("|") == 6 for line in table)
    assert "nan" not in done.stdout
    assert "Targets (issue 6):" in done.stdout
    # the docs render the same JSON into docs/benchmarks.md (bench/figures.py): table, header and targets
    section = docs_figures().compare_section(json.loads(out.read_text()))
    assert [line for line in section.splitlines() if line.startswith("| ")] == table
    assert section.count("\n- met: ") + section.count("\n- **missed**: ") == 11
    root = ET.parse(chart).getroot()
    assert root.tag.endswith("svg")
    assert len(root.findall("{http://www.w3.org/2000/svg}rect")) == 1 + 5 + 4 * 3


def test_scaling_bench_drains_with_each_count_of_processes(tmp_path: Path) -> None:
    out = tmp_path / "scaling.json"
    done = run_script(str(BENCH / "scaling.py"), "--smoke", "--json", str(out), timeout=240)
    f = json.loads(out.read_text())
    assert f["loop"] == "asyncio" and f["processes"] == [1, 2, 4, 8]
    rows = f["rows"]
    assert [row["processes"] for row in rows] == [1, 2, 4, 8]
    for row in rows:
        # every point drained every job it queued, on the loop the figures say
        assert row["done"] == f["jobs"] and not row["capped"], row
        assert row["loops"] == ["asyncio"], row
        assert row["jobs_per_s"] > 0 and row["server_cpu_ms_per_1000"] > 0, row
        assert 0 < row["server_cpu_pct"] <= 100, row  # valkey runs commands on one thread
    assert rows[0]["vs_first"] == 1.0 and rows[0]["cpu_per_job_vs_first"] == 1.0
    # the table printed is the one the docs render from the same JSON (bench/figures.py), a row per count
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 4 and "nan" not in done.stdout
    section = docs_figures().scaling_section(f)
    assert [line for line in section.splitlines() if line.startswith("| ")] == table
    assert "runner" in section.splitlines()[0] and "asyncio" in section.splitlines()[0]


def test_scaling_bench_runs_the_workers_on_uvloop(tmp_path: Path) -> None:
    if importlib.util.find_spec("uvloop") is None:
        pytest.fail('uvloop is not installed in this venv: pip install -e ".[dev]" (it includes the bench extra)')
    out = tmp_path / "scaling.json"
    args = ("--smoke", "--loop", "uvloop", "--processes", "1,2", "--json", str(out))
    done = run_script(str(BENCH / "scaling.py"), *args, timeout=120)
    f = json.loads(out.read_text())
    assert f["loop"] == "uvloop" and f["command"] == "python bench/scaling.py --smoke --loop uvloop"
    assert [(row["processes"], row["loops"], row["done"]) for row in f["rows"]] == [
        (1, ["uvloop"], f["jobs"]),
        (2, ["uvloop"], f["jobs"]),
    ]
    assert "on uvloop" in done.stdout


def test_dashboard_bench_times_every_page_and_the_drains(tmp_path: Path) -> None:
    out = tmp_path / "dashboard.json"
    done = run_script(str(BENCH / "dashboard.py"), "--smoke", "--json", str(out), timeout=300)
    figures = json.loads(out.read_text())
    assert len(figures["pages"]) >= 8
    for name, page in figures["pages"].items():
        assert 0 < page["p50"] <= page["p95"], name
        assert page["redis_cpu_ms"] >= 0 and page["dashboard_cpu_ms"] >= 0, name
    assert set(figures["drain_per_s"]) == {"no dashboard open", "one page, every 5 s", "five pages, every 1 s"}
    assert all(rate > 0 for rate in figures["drain_per_s"].values())
    assert "jobs/s" in done.stdout and "nan" not in done.stdout
    # the docs render the same JSON into docs/dashboard.md (bench/figures.py)
    section = docs_figures().dashboard_section(figures)
    assert section.count("\n| ") == 1 + len(figures["pages"]) + 1 + 3 and "nan" not in section


@pytest.mark.timeout(300)
def test_executors_bench_measures_every_executor(tmp_path: Path) -> None:
    out = tmp_path / "executors.json"
    done = run_script(str(BENCH / "executors.py"), "--smoke", "--json", str(out), timeout=240)
    f = json.loads(out.read_text())
    for mode in ("inline", "process"):
        assert 0 < f["pickup_ms"][mode]["p50"] <= f["pickup_ms"][mode]["p99"], mode
    assert set(f["sleep_jobs_per_s"]) == {"10", "50"}
    assert all(v > 0 for row in f["sleep_jobs_per_s"].values() for v in row.values())
    assert f["noop_jobs_per_s"]["async"] > 0 and f["noop_jobs_per_s"]["process"] > 0
    assert "on the process executor" in done.stdout
    # the docs render these figures the way they render the committed ones
    assert "| max_jobs 10 |" in docs_figures().executors_section(f)


def test_flow_control_bench_measures_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "flow_control.json"
    done = run_script(str(BENCH / "flow_control.py"), "--smoke", "--json", str(out), timeout=300)
    f = json.loads(out.read_text())
    # the cap and the groups are counts, so they hold even at smoke sizes on a loaded machine
    assert f["concurrency"]["most_at_once"] == 3
    assert f["fairness"]["a_done_before_last_b"] < 200
    assert f["rate"]["jobs"] == 100 and f["rate"]["rate_per_s"] > 0
    assert set(f["cost"]) == {"none", "priority", "concurrency", "global_max_jobs", "rate_limit", "groups"}
    assert all(row["left"] == 0 and row["commands_per_job"] > 0 for row in f["cost"].values())
    assert "most at once 3" in done.stdout
    assert "| `_group` over 10 groups" in docs_figures().flow_section(f)


@pytest.mark.timeout(300)
def test_cluster_bench_drains_every_split(tmp_path: Path) -> None:
    out = tmp_path / "cluster.json"
    done = run_script(str(BENCH / "cluster.py"), "--smoke", "--json", str(out), timeout=240)
    f = json.loads(out.read_text())
    assert [(row["shards"], row["split"]) for row in f["rows"]] == [
        (n, split) for n in (1, 2, 3) for split in ("by hand", "shards = N")
    ]
    assert all(row["jobs_per_s"] > 0 and row["jobs_left"] == 0 for row in f["rows"])  # every queue drained
    assert "3 shard(s) shards = N" in done.stdout
    assert "| 3 | shards = N |" in docs_figures().cluster_section(f)
