"""``runner init``: starter files that validate, never overwriting."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

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
