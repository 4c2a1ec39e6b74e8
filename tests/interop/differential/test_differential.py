"""The same arq-API scenarios on the real arq 0.28 and on runner (after the documented import rewrite), compared.

One test per scenario (``scenarios/sNN_*.py``): every observation must be equal on both sides, timings within their
tolerance, except the differences runner keeps on purpose, which the scenario declares in ``DIFFERENCES`` with
both sides' values and the section of docs/migrating-from-arq.md that explains it. The scenarios run once per
session, both sides at once (see ``harness.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.interop.differential import harness

pytestmark = [pytest.mark.interop, pytest.mark.xdist_group("arq-differential")]


@pytest.fixture(scope="module")
def runs(arq_python: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    return harness.run_both(arq_python, tmp_path_factory.mktemp("differential"))


@pytest.mark.parametrize("name", harness.scenario_names())
def test_scenario_behaves_as_on_arq(name: str, runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    arq_run, runner_run = runs[0][name], runs[1][name]
    assert "crash" not in arq_run["observations"], f"the scenario crashed on arq itself: {arq_run['observations']}"
    problems = harness.compare(name, arq_run, runner_run)
    assert not problems, f"{name}: runner differs from arq 0.28:\n" + "\n".join(problems)


def test_kept_differences_are_documented(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    page = harness.MIGRATION_PAGE.read_text()
    cited = {spec["doc"] for run in runs[0].values() for spec in run["differences"].values()}
    missing = sorted(doc for doc in cited if f'id="{doc}"' not in page)
    assert not missing, f"kept differences without a section in {harness.MIGRATION_PAGE.name}: {missing}"
    # and the other way round: every row of the page's table of differences is asserted by some scenario
    rows = set(re.findall(r'<span id="([a-z-]+)"></span>', page))
    assert rows, f"{harness.MIGRATION_PAGE.name} lost its table of differences"
    unasserted = sorted(rows - cited)
    assert not unasserted, f"differences the page lists that no scenario's DIFFERENCES asserts: {unasserted}"


@pytest.fixture(scope="module")
def arq_api(arq_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return harness.arq_api(arq_python, tmp_path_factory.mktemp("arq-names"))


def test_arq_names_are_read_from_every_module_of_arq(arq_api: dict[str, Any]) -> None:
    # a listing that lost a module (arq moved, the reader broke) would let every check below pass vacuously
    assert arq_api["version"] == "0.28.0"
    modules = {"", "cli", "connections", "constants", "cron", "jobs", "logs", "typing", "utils", "version", "worker"}
    assert set(arq_api["defined"]) == modules
    assert all(arq_api["defined"][m] for m in modules)
    assert {"ArqRedis", "RedisSettings"} <= set(arq_api["reexported"]["worker"])
    assert "worker" in arq_api["submodules"]


def test_every_arq_name_is_importable_from_the_runner_module_of_the_same_name(arq_api: dict[str, Any]) -> None:
    lacking = harness.runner_lacks(arq_api)
    assert not lacking, "runner lacks arq names:\n" + "\n".join(lacking)


def test_every_arq_name_is_used_by_a_scenario(arq_api: dict[str, Any]) -> None:
    used = harness.names_used_by_scenarios()
    unused = [
        f"arq.{module}.{name}".replace("..", ".")
        for module, names in arq_api["defined"].items()
        for name in names
        if f"{module}.{name}" not in used
    ]
    assert not unused, f"arq names no differential scenario exercises: {unused}"


def test_the_rewrite_is_one_line_and_touches_only_imports(tmp_path: Path) -> None:
    source = tmp_path / "app.py"
    source.write_text(
        "import arq\n"
        "import arq.worker\n"
        "import arq.jobs as jobs\n"
        "from arq import create_pool, cron\n"
        "from arq.connections import (\n    RedisSettings,\n)\n"
        "    from arq.worker import func  # indented\n"
        "QUEUE = 'arq:queue'\n"
        "CONFIG = {'loggers': {'arq': {}}}\n"
        "import arquebus\n"
    )
    harness.rewritten_copy_of_file(source)
    assert source.read_text() == (
        "import runner as arq\n"
        "import runner as arq, runner.worker\n"
        "import runner.jobs as jobs\n"
        "from runner import create_pool, cron\n"
        "from runner.connections import (\n    RedisSettings,\n)\n"
        "    from runner.worker import func  # indented\n"
        "QUEUE = 'arq:queue'\n"
        "CONFIG = {'loggers': {'arq': {}}}\n"
        "import arquebus\n"
    )
