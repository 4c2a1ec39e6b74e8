"""``runner config``: effective configuration as TOML, origins, masked secrets."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.support.cli import clean_env, invoke, make_project

TOML = """\
max_jobs = 4

[redis]
url = "redis://app:hunter2@cache:6379/1"

[functions.send_email]
path = "cfgcmdtasks:send_email"
timeout = "1m"
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)


def test_effective_config_is_valid_toml_with_secrets_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path, TOML, "cfgcmdtasks")
    monkeypatch.setenv("RUNNER_REDIS__PASSWORD", "topsecret")
    result = invoke("config", "worker.toml")
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert "topsecret" not in result.output
    data = tomllib.loads(result.stdout)
    assert data["max_jobs"] == 4
    assert data["job_timeout"] == 300
    assert data["redis"]["url"] == "redis://app:***@cache:6379/1"
    assert data["redis"]["password"] == "***"
    assert data["functions"] == {"send_email": {"path": "cfgcmdtasks:send_email", "timeout": 60}}


def test_show_origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path, TOML, "cfgcmdtasks")
    (tmp_path / ".env").write_text("RUNNER_POLL_DELAY=2s\n")
    monkeypatch.setenv("RUNNER_FUNCTIONS__SEND_EMAIL__MAX_TRIES", "3")
    result = invoke("config", "worker.toml", "--show-origin")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "max_jobs = 4" in lines[0]
    assert lines[0].endswith("# worker.toml:1")
    assert any(line.startswith("poll_delay = 2 ") and line.endswith("# .env:1 RUNNER_POLL_DELAY") for line in lines)
    assert any(line.startswith("max_tries = 5 ") and line.endswith("# default") for line in lines)
    assert any(
        line.startswith("max_tries = 3 ") and line.endswith("# env RUNNER_FUNCTIONS__SEND_EMAIL__MAX_TRIES")
        for line in lines
    )
    assert any(
        line.startswith('url = "redis://app:***@cache:6379/1"') and line.endswith("# worker.toml:4") for line in lines
    )
    # the commented output is still TOML
    assert tomllib.loads(result.stdout)["poll_delay"] == 2


def test_bad_config_is_an_error(tmp_path: Path) -> None:
    make_project(tmp_path, TOML.replace("max_jobs = 4", "max_jobs = 0"), "cfgcmdtasks")
    result = invoke("config", "worker.toml")
    assert result.exit_code == 1
    assert result.stderr == "Error: worker.toml:1: max_jobs: must be greater than 0 (got 0)\n"
