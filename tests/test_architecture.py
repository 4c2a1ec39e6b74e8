"""The layering the style guide promises: the engine stands alone."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "runner" / "engine"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_engine_never_imports_config_or_cli() -> None:
    offenders = {
        f"{path.name}: {name}"
        for path in ENGINE.rglob("*.py")
        for name in imported_modules(path)
        if name.startswith(("runner.config", "runner.cli"))
    }
    assert offenders == set()


def test_arq_names_are_importable_from_runner() -> None:
    import runner

    for name in (
        "create_pool",
        "RedisSettings",
        "Worker",
        "Job",
        "JobStatus",
        "JobDef",
        "JobResult",
        "Retry",
        "func",
        "cron",
        "ResultNotFound",
        "JobExecutionFailed",
        "ArqRedis",
        "check_health",
    ):
        assert hasattr(runner, name), name


def test_croniter_stays_out_of_the_engine_and_of_a_running_worker(tmp_path: Path, redis_url: str) -> None:
    # croniter only checks schedules (runner validate); importing runner or running a worker never loads it
    program = f"""
import asyncio, sys
import runner
assert "croniter" not in sys.modules, "import runner"
from runner import RedisSettings, Worker, cron

async def tick(ctx):
    return 1

worker = Worker(
    [tick], cron_jobs=[cron(tick, name="cron:tick", schedule="* * * * *")], burst=True, handle_signals=False,
    redis_settings=RedisSettings.from_dsn({redis_url!r}),
)
async def run():
    try:
        await worker.async_run()
    finally:
        await worker.close()
asyncio.run(run())
assert "croniter" not in sys.modules, "a running worker"
from runner.config import build_workers, load_settings
assert "croniter" not in sys.modules, "runner.config"
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def _import_graph() -> dict[str, set[str]]:
    """Every runner module and the runner modules it imports (anywhere in it, TYPE_CHECKING and functions too)."""
    root = ENGINE.parent
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from runner.engine import keys` imports the module keys, not everything the package holds
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
                targets = subs if len(subs) == len(node.names) else [node.module, *subs]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _import_graph()

    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        stack = [start]
        while stack:
            for nxt in graph[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    cycles = sorted(f"{a} -> {b}" for a in graph for b in graph[a] if a in reaches(b))
    assert cycles == []


@pytest.mark.parametrize("package", ["runner.engine", "runner.config"])
def test_lazy_exports_match_their_typed_imports(package: str) -> None:
    """Each lazily exported name is imported for type checkers from the module EXPORTS names, and resolves."""
    module = importlib.import_module(package)
    source = Path(module.__file__ or "").read_text()
    typed: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                typed.update({alias.name: statement.module or "" for alias in statement.names})
    assert typed == module.EXPORTS
    assert module.__all__ == sorted(module.EXPORTS)
    for name, origin in module.EXPORTS.items():
        assert getattr(module, name) is getattr(importlib.import_module(origin), name)


def test_runner_names_every_engine_export_for_type_checkers() -> None:
    import runner
    import runner.engine

    tree = ast.parse(Path(runner.__file__ or "").read_text())
    typed = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for statement in node.body
        if isinstance(statement, ast.ImportFrom) and statement.module == "runner.engine"
        for alias in statement.names
    ]
    assert typed == runner.engine.__all__
    assert runner.__all__ == [*runner.engine.__all__, "VERSION", "__version__"]


def test_the_cron_submodule_does_not_hide_the_cron_function() -> None:
    """Importing runner.engine.cron binds the module on the package; the public name stays the function."""
    import sys

    import runner
    import runner.engine
    import runner.engine.cron  # the import is the point

    function = sys.modules["runner.engine.cron"].cron
    assert runner.engine.cron is function
    assert runner.cron is function


RUNNER = ENGINE.parent
MODULE_MOST_LINES = 600
FUNCTION_MOST_LINES = 60


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A function's statements, from the first to the end of the last: its signature and docstring not counted."""
    body = node.body
    if (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def test_modules_and_functions_stay_small() -> None:
    # the style guide's sizes: split a module before ~600 lines, a function before ~60 (a long signature such as
    # arq's Worker constructor's is not counted, nor a docstring)
    too_long: list[str] = []
    for path in sorted(RUNNER.rglob("*.py")):
        source = path.read_text()
        name = path.relative_to(RUNNER.parent)
        if (lines := len(source.splitlines())) > MODULE_MOST_LINES:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body_lines(node) > FUNCTION_MOST_LINES:
                too_long.append(f"{name}:{node.lineno} {node.name}(): {_body_lines(node)} lines")
    assert too_long == []


def test_the_size_rule_counts_what_it_says() -> None:
    tree = ast.parse(
        'def f(\n    a: int,\n    b: int,\n) -> int:\n    """Doc.\n\n    More."""\n    x = a\n    return x + b\n'
    )
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    assert _body_lines(function) == 2
