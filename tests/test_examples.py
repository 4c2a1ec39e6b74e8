"""examples/: the worker.toml is valid, its jobs behave as documented, the demo runs them, the FastAPI app works."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from runner import embedded

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would point the examples somewhere else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_") and k not in ("REDIS_URL",)}
    env.pop("EXAMPLE_OUTBOX", None)
    env.update(extra)
    return env


def run(command: list[str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; on a hang, end it and anything it started (its own session) by id."""
    proc = subprocess.Popen(
        command, cwd=cwd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{command} did not finish in {timeout}s:\n{out}\n{err}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A copy of the project's examples/ in a temp directory; its embedded server is stopped afterwards."""
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns(".runner", "__pycache__"))
    yield tmp_path
    data = tmp_path / "examples" / ".runner"
    embedded.stop(data, timeout=10)


def load_example(name: str, directory: Path = EXAMPLES) -> ModuleType:
    """Import examples/<name>.py under a name of its own, whatever other tests imported as ``tasks``."""
    spec = importlib.util.spec_from_file_location(f"example_{name}_{id(directory)}", directory / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worker_toml_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.config import check, load_settings

    # worker.toml says "tasks:…": that must find examples/tasks.py, not a tasks module another test imported,
    # and must not leave examples/tasks.py behind for the next one
    monkeypatch.setattr(sys, "path", list(sys.path))
    previous = sys.modules.pop("tasks", None)
    try:
        loaded = load_settings(EXAMPLES / "worker.toml")
        assert check(loaded) == []
    finally:
        sys.modules.pop("tasks", None)
        if previous is not None:
            sys.modules["tasks"] = previous
    settings = loaded.settings
    assert settings.redis.url == "embedded://.runner"
    assert settings.functions["build_report"].timeout == 2
    assert settings.functions["fetch_exchange_rate"].max_tries == 5
    assert settings.cron["outbox_cleanup"].function == "purge_outbox"


def test_demo_enqueues_runs_and_prints_results(project: Path) -> None:
    result = run([sys.executable, "examples/demo.py"], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert (
        lines[0] == f"Enqueued 5 jobs into embedded://{project / 'examples' / '.runner'}; no worker is needed for that."
    )
    assert lines[1] == "Starting the worker: runner start examples/worker.toml"
    assert lines[-1] == "Done. Results are kept for an hour; `runner jobs examples/worker.toml list` shows them."
    results = sorted(line.strip() for line in lines if line.startswith("  ") and ("✓" in line or "✗" in line))
    expected = [
        r"build_report\(100000\) +✗ TimeoutError: the job ran longer than its timeout of 2s",
        r"build_report\(500\) +✓ \{'rows': 500, 'seconds': [\d.]+\}",
        r"fetch_exchange_rate\('EUR'\) +✓ \{'currency': 'EUR', 'usd': 1.08, 'tries': 3\}",
        r"send_email\('ada@example.com', 'Welcome aboard'\) +✓ "
        r"\{'to': 'ada@example.com', 'file': '\w+.eml', 'bytes': \d+\}",
        r"send_email\('grace@example.com', 'Your weekly digest'\) +✓ "
        r"\{'to': 'grace@example.com', 'file': '\w+.eml', 'bytes': \d+\}",
    ]
    assert len(results) == len(expected), result.stdout
    for line, pattern in zip(results, expected, strict=True):
        assert re.fullmatch(pattern, line), line
    outbox = project / "examples" / ".runner" / "outbox"
    sent = sorted(message_from_bytes(path.read_bytes())["To"] for path in outbox.glob("*.eml"))
    assert sent == ["ada@example.com", "grace@example.com"]

    # the closing hint holds whenever it is typed: here after the server has stopped (2 s after the demo, by itself)
    embedded.stop(project / "examples" / ".runner", timeout=10)
    hint = shlex.split(re.search(r"`([^`]+)`", lines[-1]).group(1))  # type: ignore[union-attr]
    assert hint[0] == "runner"
    listed = run([sys.executable, "-m", "runner.cli", *hint[1:]], cwd=project)
    assert listed.returncode == 0, listed.stderr
    statuses = sorted(line.split()[1] for line in listed.stdout.splitlines()[1:])
    assert statuses == ["complete"] * 4 + ["failed"], listed.stdout


def test_purge_outbox_deletes_only_old_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = load_example("tasks")
    monkeypatch.setattr(tasks, "OUTBOX", tmp_path)
    old, new = tmp_path / "old.eml", tmp_path / "new.eml"
    old.write_text("x")
    new.write_text("y")
    an_hour_and_a_bit_ago = time.time() - 3700
    os.utime(old, (an_hour_and_a_bit_ago, an_hour_and_a_bit_ago))
    assert asyncio.run(tasks.purge_outbox({})) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.eml"]


# newer Starlette prefers the httpx2 package for its test client; either works
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
def test_fastapi_app_enqueues_once_and_reports_status(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient  # in the test extra: this test never skips

    from runner import RedisSettings, Worker, func

    examples = project / "examples"
    monkeypatch.delenv("REDIS_URL", raising=False)
    fastapi_app = load_example("fastapi_app", examples)
    tasks = load_example("tasks", examples)

    url = f"embedded://{examples / '.runner'}"
    monkeypatch.setattr(fastapi_app, "REDIS_URL", url)
    monkeypatch.setattr(tasks, "OUTBOX", examples / ".runner" / "outbox")

    async def run_worker() -> None:
        worker = Worker(
            [func(tasks.send_email, name="send_email")],
            redis_settings=RedisSettings.from_dsn(url),
            burst=True,
            handle_signals=False,
            on_startup=tasks.startup,
        )
        try:
            await worker.async_run()
        finally:
            await worker.close()

    with TestClient(fastapi_app.app) as client:
        first = client.post("/welcome", json={"email": "ada@example.com", "name": "Ada"})
        assert (first.status_code, first.json()) == (202, {"job_id": "welcome:ada@example.com", "enqueued": True})
        again = client.post("/welcome", json={"email": "ada@example.com"})
        assert again.json() == {"job_id": "welcome:ada@example.com", "enqueued": False}
        queued = client.get("/jobs/welcome:ada@example.com")
        assert queued.json() == {"job_id": "welcome:ada@example.com", "status": "queued"}

        asyncio.run(run_worker())

        done: dict[str, Any] = client.get("/jobs/welcome:ada@example.com").json()
        assert done["status"] == "complete"
        assert done["success"] is True
        assert done["result"]["to"] == "ada@example.com"
        assert client.post("/welcome", json={"email": "ada@example.com"}).json()["enqueued"] is False
        missing = client.get("/jobs/nope")
        assert (missing.status_code, missing.json()) == (
            404,
            {"detail": "no job 'nope' (never enqueued, or its result expired)"},
        )
    message = message_from_bytes((examples / ".runner" / "outbox" / "welcome:ada@example.com.eml").read_bytes())
    assert message["Subject"] == "Welcome, Ada!"


def test_every_example_is_tested_and_none_is_skipped() -> None:
    """Each examples/*.py is run by a test here, and none of them can skip for a missing package."""
    source = Path(__file__).read_text()
    for example in sorted(EXAMPLES.glob("*.py")):
        assert f'"{example.stem}"' in source or f"examples/{example.name}" in source, f"{example.name} has no test"
    calls = {node.func.attr for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute)}  # fmt: skip
    assert not calls & {"importorskip", "skip"}

    test_extra = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[<>=\[]", spec)[0] for spec in test_extra["test"]}
    assert {"fastapi", "httpx"} <= names
