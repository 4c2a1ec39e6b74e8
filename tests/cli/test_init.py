"""``runner init``: starter files that validate, never overwriting."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runner import __version__, embedded
from runner.config.schema import worker_schema
from tests.support.cli import clean_env, invoke


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)


def test_init_writes_files_that_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke("init", "proj")
    assert result.exit_code == 0
    assert result.stdout == (
        "Created proj/worker.toml, proj/tasks.py and proj/worker.schema.json.\n"
        "Check it:  runner validate proj/worker.toml\n"
        "Run it:    runner start proj/worker.toml\n"
    )
    text = (tmp_path / "proj" / "worker.toml").read_text()
    assert text.startswith("#:schema ./worker.schema.json\n")
    assert json.loads((tmp_path / "proj" / "worker.schema.json").read_text()) == worker_schema()
    monkeypatch.syspath_prepend(str(tmp_path / "proj"))
    sys.modules.pop("tasks", None)
    result = invoke("validate", "proj/worker.toml")
    sys.modules.pop("tasks", None)
    assert result.exit_code == 0, result.output
    assert result.stdout == "proj/worker.toml: OK (queue arq:queue: 2 functions, 1 cron job)\n"


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "worker.toml").write_text("# mine\n")
    result = invoke("init")
    assert result.exit_code == 1
    assert result.stderr == "Error: worker.toml already exists; remove it or choose another directory\n"
    assert (tmp_path / "worker.toml").read_text() == "# mine\n"
    assert not (tmp_path / "tasks.py").exists()


def test_init_starter_runs_with_nothing_installed(tmp_path: Path) -> None:
    """The starter's `runner start` works on a machine with no Redis: it names an embedded server."""
    assert invoke("init", "proj").exit_code == 0
    text = (tmp_path / "proj" / "worker.toml").read_text()
    assert '\nurl = "embedded://.runner"\n' in text
    assert 'url = "redis://HOST:6379/0"' in text  # the comment says how to point it at a real server
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RUNNER_") and k.upper() != "REDIS_URL"}
    runner = [sys.executable, "-m", "runner.cli"]
    try:
        enqueued = subprocess.run(
            [*runner, "enqueue", "proj/worker.toml", "send_email", "ada@example.com"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert enqueued.returncode == 0, enqueued.stderr
        started = subprocess.run(
            [*runner, "start", "proj/worker.toml", "--burst"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith(f"runner {__version__}: proj/worker.toml, Redis embedded://")
        done = r"← \S+:send_email ● \{'to': 'ada@example.com', 'subject': 'Hello', 'try': 1\}"
        assert re.search(done, started.stderr)
    finally:
        embedded.stop(tmp_path / "proj" / ".runner", timeout=10)
    assert not (tmp_path / ".runner").exists()  # relative to worker.toml, not to the working directory
