"""The ``runner`` command line: a click group and one module per command.

Each command module defines one click command (or group); ``COMMANDS`` below names them, with the one-line help
``runner --help`` shows, so that a command's module (and what it imports: pydantic, redis-py, the worker) is
imported only when that command runs. tests/cli/test_help.py checks each line against the command's docstring.
Library code raises ``RunnerError``; only this layer turns errors into ``Error: …`` lines and exit codes
(1 failure, 2 usage, 3 could not start).

arq's ``arq.cli`` names are here too (``watch_reload`` and the help texts, imported when first used), for code that
imports them; ``cli`` is runner's command group, where arq's ``cli`` was its one command (``arq SETTINGS`` is
``runner start SETTINGS``).
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import click

from runner import __version__


class Entry(NamedTuple):
    module: str  # inside runner.cli
    attr: str  # the click command in it
    short_help: str  # its docstring's first line, as --help lists it


COMMANDS: dict[str, Entry] = {
    "start": Entry(
        "start", "start", "Run a worker for each queue of a worker.toml (validated first), or an arq WorkerSettings."
    ),
    "validate": Entry("validate", "validate", "Check a worker.toml: report every problem, exit 1 if any."),
    "config": Entry("config_cmd", "config", "Print the effective configuration as TOML, secrets masked."),
    "init": Entry("init", "init", "Write a starter worker.toml and tasks module into PATH."),
    "schema": Entry("schema", "schema", "Print the JSON Schema of worker.toml."),
    "import-arq": Entry("import_arq", "import_arq", "Translate an arq WorkerSettings class into worker.toml."),
    "embedded": Entry("embedded", "embedded", "See and stop the embedded server behind embedded:// URLs."),
    "next-cron": Entry("next_cron", "next_cron", "List the next runs of every cron job, cross-checked with croniter."),
    "check": Entry("check", "check", "Exit 1 unless every queue has a live worker."),
    "info": Entry("info", "info", "Queue depths, oldest wait, outcomes per minute, workers."),
    "jobs": Entry("jobs", "jobs", "List, show, retry, abort and purge jobs."),
    "enqueue": Entry("enqueue", "enqueue", "Enqueue a job from the shell; --wait prints its result."),
    "migrate-layout": Entry(
        "migrate_layout", "migrate_layout", "Move waiting jobs from another server or key layout into the file's."
    ),
    "dashboard": Entry(
        "dashboard", "dashboard", "Serve the web dashboard and its JSON API for the queues of WORKER_TOML."
    ),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs; its own --help lists the table."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command = getattr(importlib.import_module(f"runner.cli.{entry.module}"), entry.attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # what click's own listing does, from the table instead of from every imported command
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=COMMANDS[name].short_help).get_short_help_str(limit))
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
def cli() -> None:
    """Declarative asyncio job workers on Redis, wire-compatible with arq."""


def main() -> None:
    cli(prog_name="runner")


# arq.cli's names, from runner.cli.arq_compat when first used (the runner command does not need them): what it
# defines, then what it imports from arq's other modules
ARQ_NAMES = (
    *("burst_help", "health_check_help", "watch_help", "verbose_help", "logdict_help", "watch_reload"),
    *("VERSION", "check_health", "create_worker", "default_log_config", "import_string", "run_worker"),
)


def __getattr__(name: str) -> Any:
    if name in ARQ_NAMES:
        value = getattr(importlib.import_module("runner.cli.arq_compat"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'runner.cli' has no attribute {name!r}")


__all__ = ["cli", "main", *ARQ_NAMES]
