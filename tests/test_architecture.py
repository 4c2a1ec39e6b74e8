"""The layering the style guide promises: the engine stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

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
