"""The generated pages (worker.toml and CLI references, benchmark tables) are what the code and the committed
figures generate now, so they cannot drift."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

from runner.config import models
from runner.config.types import parse_duration

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "docs" / "_tools" / "reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("docs_reference", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", ["reference/worker-toml.md", "reference/cli.md", "benchmarks.md", "guarantees.md"])
def test_committed_page_is_generated_from_the_code(page: str) -> None:
    gen = generator()
    committed = (ROOT / "docs" / page).read_text()
    assert committed == gen.PAGES[page](), f"docs/{page} is stale: run `make docs` and commit it"


MODELS: list[type[BaseModel]] = [
    models.WorkerSettings,
    models.RedisConfig,
    models.HooksConfig,
    models.FunctionConfig,
    models.CronConfig,
    models.SerializerPaths,
    models.DashboardConfig,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_key_says_what_it_is(model: type[BaseModel]) -> None:
    # the reference's last column is the field's description: a key without one would be a blank row
    # (the tables of the file, [redis] and the like, have a section of their own instead)
    tables = generator().TABLES
    missing = [name for name, info in model.model_fields.items() if not info.description and name not in tables]
    assert not missing, f"{model.__name__}: give these fields a description= (shown in the reference): {missing}"


def test_queue_options_mean_what_the_worker_wide_ones_mean() -> None:
    # a [queues.<name>] option without a description borrows the worker-wide one's
    for name in models.QUEUE_OPTIONS:
        assert name in models.WorkerSettings.model_fields, name


@pytest.mark.parametrize("seconds", [0.0, 0.5, 1.0, 30.0, 90.0, 300.0, 3600.0, 5400.0, 86400.0, 604800.0, 1.25])
def test_durations_shown_as_the_file_would_spell_them_read_back_the_same(seconds: float) -> None:
    shown = generator().format_duration(seconds)
    assert parse_duration(shown.strip('"')) == seconds


def test_every_public_name_is_in_the_api_reference() -> None:
    import runner

    page = (ROOT / "docs" / "reference" / "api.md").read_text()
    # `runner.cron` is also a module's name, so the function is named by its full path there
    documented = set(re.findall(r"^::: runner\.(?:[\w.]+\.)?(\w+)$", page, flags=re.M))
    missing = sorted(set(runner.__all__) - {"__version__"} - documented)
    assert not missing, f"docs/reference/api.md: add a `::: runner.<name>` line for each of {missing}"


def test_the_soak_runs_render_as_a_row_each_with_the_targets() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import figures
        import soak
    finally:
        sys.path.remove(str(ROOT / "bench"))
    options = vars(soak.parse(["--jobs", "10"]))
    run = {
        "server": "valkey 9.1.2", "run": 1, "enqueued": 10, "completed": 10, "lost": 0, "failed": 0,
        "failed_without_start": 0, "duplicated": 2, "undocumented_duplicates": 0, "concurrent_runs": 0,
        "reruns": 3, "longest_wait_s": 2.41, "stuck_in_queue": 0, "lease_s": 2.0, "worker_kills": 4, "freezes": 1,
        "storms": 1, "stalls": 1, "redis_restarts": 2,
    }  # fmt: skip
    data = {
        "command": "python bench/soak.py --jobs 10", "runner": "0.1.0", "python": "3.11.7", "cores": 2,
        "load_before": 1.5, "load_after": 2.0, "wall_s": 61.0, "options": options,
        "runs": [run, {**run, "run": 2, "longest_wait_s": 3.5}],
    }  # fmt: skip
    section = figures.soak_section(data)
    assert section.startswith("`python bench/soak.py --jobs 10`: runner 0.1.0")
    assert "| valkey 9.1.2 | 1 | 0 | 2 (0) | 0 | 0 | 2.41 s | 3 | 4 / 1 / 1 / 1 / 2 |" in section
    # the second run's wait is past the lease and a second: the page says which target it missed
    assert section.endswith("(3 s): **missed** in run 2 on valkey 9.1.2: longest wait.")
    assert soak.missed(run) == [] and soak.missed(data["runs"][1]) == ["longest wait"]
