"""The ``runner`` command line: a click group and one module per command.

Each command module defines one click command (or group); they are registered in ``COMMANDS`` below so the
group stays easy to read.  Library code raises ``RunnerError``; only this layer turns errors into ``Error: …``
lines and exit codes (1 failure, 2 usage, 3 could not start).
"""

from __future__ import annotations

import importlib

import click

from runner import __version__

# module name inside runner.cli -> attribute holding the click command
COMMANDS: dict[str, str] = {
    "start": "start",
    "validate": "validate",
    "config_cmd": "config",
    "init": "init",
    "schema": "schema",
    "import_arq": "import_arq",
    "embedded": "embedded",
    "next_cron": "next_cron",
    "check": "check",
    "info": "info",
    "jobs": "jobs",
    "enqueue": "enqueue",
    "dashboard": "dashboard",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
def cli() -> None:
    """Declarative asyncio job workers on Redis, wire-compatible with arq."""


def _register() -> None:
    for module_name, attr in COMMANDS.items():
        module = importlib.import_module(f"runner.cli.{module_name}")
        cli.add_command(getattr(module, attr))


_register()


def main() -> None:
    cli(prog_name="runner")
