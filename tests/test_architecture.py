"""The layering the style guide promises: the engine stands alone."""

from __future__ import annotations

import ast
import subprocess
import sys
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
asyncio.run(worker.async_run())
assert "croniter" not in sys.modules, "a running worker"
from runner.config import build_workers, load_settings
assert "croniter" not in sys.modules, "runner.config"
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
