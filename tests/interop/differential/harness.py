"""The differential harness: the same arq-API scenarios, run on the real arq and on runner, compared.

The arq side runs ``scenarios/`` as written, in the arq venv. The runner side runs a copy rewritten by the import
rewrite that docs/migrating-from-arq.md gives to users (the harness runs that very line, so the page and the test
cannot drift apart), in this venv. Each side runs in its own process on its own server, both at once, under
``TZ=Asia/Kolkata`` so that anything that depends on the local zone shows.
"""

from __future__ import annotations

import ast
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.interop.arq_env import subprocess_env
from tests.support.servers import ValkeyServer

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
DRIVER = HERE / "driver.py"
REPO_ROOT = HERE.parents[2]
MIGRATION_PAGE = REPO_ROOT / "docs" / "migrating-from-arq.md"
ARQ_NAMES = HERE / "arq_names.py"
RUNNER_NAMES = HERE / "runner_names.py"
LOCAL_ZONE = "Asia/Kolkata"
RUN_TIMEOUT_S = 240
# the line of the migration page that rewrites the imports is the first command of the block after this marker
REWRITE_MARKER = "<!-- the import rewrite -->"


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("s*.py"))


def rewrite_command() -> str:
    """The import rewrite, as the migration page gives it."""
    text = MIGRATION_PAGE.read_text()
    if REWRITE_MARKER not in text:
        raise AssertionError(f"{MIGRATION_PAGE} lost its {REWRITE_MARKER!r} marker")
    block = re.search(r"```console\n(.*?)```", text.split(REWRITE_MARKER, 1)[1], re.S)
    if block is None:
        raise AssertionError(f"no ```console block follows {REWRITE_MARKER!r} in {MIGRATION_PAGE}")
    lines = [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]
    return lines[0].removeprefix("$ ")


def rewritten_copy_of_file(path: Path) -> None:
    """Run the page's command in ``path``'s directory (it rewrites every .py file there)."""
    subprocess.run(["bash", "-c", rewrite_command()], cwd=path.parent, check=True, timeout=60)


def rewritten_copy(destination: Path) -> Path:
    """The scenarios, copied to ``destination`` and rewritten by the page's command run there."""
    shutil.copytree(SCENARIOS, destination, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["bash", "-c", rewrite_command()], cwd=destination, check=True, timeout=60)
    return destination


@dataclass
class Side:
    """One interpreter's run of every scenario."""

    name: str
    python: Path
    scenario_dir: Path

    def run(self, names: list[str], work: Path) -> dict[str, Any]:
        server = ValkeyServer().start()
        try:
            env = subprocess_env(TZ=LOCAL_ZONE) if self.name == "arq" else {**os.environ, "TZ": LOCAL_ZONE}
            env.pop("ARQ_TIMEZONE", None)
            # the driver and the scenarios are copied out, so the arq side's sys.path holds neither runner nor tests
            driver = work / "driver.py"
            shutil.copy(DRIVER, driver)
            done = subprocess.run(
                [str(self.python), str(driver), str(self.scenario_dir), server.url, *names],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
        finally:
            server.stop()
        if done.returncode != 0:
            raise AssertionError(
                f"the {self.name} side's driver failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
            )
        result: dict[str, Any] = json.loads(done.stdout)
        return result


def run_both(arq_python: Path, work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every scenario on both sides, the two runs at once; returns (arq's, runner's)."""
    names = scenario_names()
    for sub in ("arq", "runner", "arq-work", "runner-work"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    arq_dir = work / "arq" / "scenarios"
    shutil.copytree(SCENARIOS, arq_dir, ignore=shutil.ignore_patterns("__pycache__"))
    runner_dir = rewritten_copy(work / "runner" / "scenarios")
    sides = [
        Side("arq", arq_python, arq_dir),
        Side("runner", Path(sys.executable), runner_dir),
    ]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(side.run, names, work / f"{side.name}-work") for side in sides]
        arq_run, runner_run = (f.result() for f in futures)
    return arq_run, runner_run


# -- comparing ---------------------------------------------------------------------------------------------------


def agree(arq_value: Any, runner_value: Any) -> bool:
    """Whether runner's observation stands for arq's.

    Equal, except: timings (``{"seconds", "tolerance"}``) agree within the tolerance; an exception agrees when
    runner's is an instance of arq's class (it may be a runner subclass, so arq's ``except`` clauses still catch
    it) with the same arguments and text.
    """
    if isinstance(arq_value, dict) and isinstance(runner_value, dict):
        if set(arq_value) == {"seconds", "tolerance"}:
            if set(runner_value) != {"seconds", "tolerance"}:
                return False
            return bool(abs(arq_value["seconds"] - runner_value["seconds"]) <= arq_value["tolerance"])
        if "exception" in arq_value and "is" in arq_value and "is" in runner_value:
            return bool(
                arq_value["exception"] in runner_value["is"]
                and agree(arq_value["args"], runner_value["args"])
                and arq_value["str"] == runner_value["str"]
            )
        return arq_value.keys() == runner_value.keys() and all(agree(arq_value[k], runner_value[k]) for k in arq_value)
    if isinstance(arq_value, list) and isinstance(runner_value, list):
        return len(arq_value) == len(runner_value) and all(
            agree(a, r) for a, r in zip(arq_value, runner_value, strict=True)
        )
    return bool(arq_value == runner_value)


def expected(spec: Any, value: Any) -> bool:
    """Whether an observation is what a kept difference says (a dict spec names only the fields it checks)."""
    if isinstance(spec, dict) and isinstance(value, dict):
        return all(key in value and expected(spec[key], value[key]) for key in spec)
    return bool(spec == value)


def compare(name: str, arq_run: dict[str, Any], runner_run: dict[str, Any]) -> list[str]:
    """Every disagreement of one scenario, as lines for the failure message (empty when the runs agree)."""
    arq_obs, runner_obs = arq_run["observations"], runner_run["observations"]
    differences: dict[str, Any] = arq_run["differences"]
    problems = []
    for key in sorted(set(arq_obs) | set(runner_obs) | set(differences)):
        a, r = arq_obs.get(key, "<not observed>"), runner_obs.get(key, "<not observed>")
        if key in differences:
            spec = differences[key]
            if not expected(spec["arq"], a) or not expected(spec["runner"], r):
                problems.append(
                    f"{key} (a kept difference, docs #{spec['doc']}): expected arq {spec['arq']!r} / runner "
                    f"{spec['runner']!r}, got arq {a!r} / runner {r!r}"
                )
        elif not agree(a, r):
            problems.append(f"{key}:\n    arq:    {a!r}\n    runner: {r!r}")
    return problems


# -- what arq defines --------------------------------------------------------------------------------------------


def arq_api(arq_python: Path, work: Path) -> dict[str, Any]:
    """arq's public names, as ``arq_names.py`` finds them in the arq venv's own package (see there)."""
    script = work / "arq_names.py"
    shutil.copy(ARQ_NAMES, script)  # copied out, so the arq side's sys.path holds neither runner nor tests
    done = subprocess.run(
        [str(arq_python), str(script)], cwd=work, env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"arq_names.py failed in the arq venv (exit {done.returncode}):\n{done.stderr}")
    api: dict[str, Any] = json.loads(done.stdout)
    return api


def runner_lacks(api: dict[str, Any]) -> list[str]:
    """What runner lacks of ``api``, checked by ``runner_names.py`` in a fresh interpreter of this venv."""
    done = subprocess.run(
        [sys.executable, str(RUNNER_NAMES)],
        input=json.dumps(api),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise AssertionError(f"runner_names.py failed (exit {done.returncode}):\n{done.stderr}")
    lacking: list[str] = json.loads(done.stdout)
    return lacking


def names_used_by_scenarios() -> set[str]:
    """``module.name`` for every arq name a scenario imports or reaches as an attribute of an arq module."""
    used: set[str] = set()
    for path in SCENARIOS.glob("s*.py"):
        tree = ast.parse(path.read_text())
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "arq":
                module = node.module.partition(".")[2]
                for alias in node.names:
                    used.add(f"{module}.{alias.name}")
                    aliases[alias.asname or alias.name] = f"{module}.{alias.name}".lstrip(".")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                used.add(f"{aliases[node.value.id]}.{node.attr}")
    return used


__all__ = [
    "agree",
    "arq_api",
    "compare",
    "names_used_by_scenarios",
    "rewrite_command",
    "rewritten_copy",
    "rewritten_copy_of_file",
    "run_both",
    "runner_lacks",
    "scenario_names",
]
