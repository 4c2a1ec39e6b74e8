"""``runner validate``: every problem of a worker.toml at once, for CI."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runner.cli.exits import EXIT_FAILURE, EXIT_OK, handled
from runner.cli.loading import config_argument, load
from runner.config import Problem, ProblemList, check
from runner.config.checks import crons_of_queue, served_functions
from runner.config.models import WorkerSettings
from runner.text import plural


@click.command("validate")
@config_argument
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per problem, or one JSON document.",
)
@click.option("--no-import", is_flag=True, help="Skip importing task modules (schema and name checks only).")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks of unexpected errors.")
def validate(config_file: Path, output_format: str, no_import: bool, verbose: bool) -> None:
    """Check a worker.toml: report every problem, exit 1 if any."""
    problems: list[Problem]
    summary = ""
    warnings: list[str] = []
    with handled(EXIT_FAILURE, verbose):
        try:
            loaded = load(config_file)
        except ProblemList as exc:
            problems = exc.problems
        else:
            problems = check(loaded, imports=not no_import)
            settings = loaded.settings
            summary = "; ".join(
                f"queue {name}: {plural(len(served_functions(settings, name)), 'function')}, "
                f"{plural(len(crons_of_queue(settings, name)), 'cron job')}"
                for name in settings.queue_names()
            )
            warnings = security_warnings(settings)
    if output_format == "json":
        document = {
            "file": str(config_file),
            "valid": not problems,
            "problems": [p.as_dict() for p in problems],
            "warnings": [] if problems else warnings,
        }
        click.echo(json.dumps(document, indent=2))
    else:
        for problem in problems:
            click.echo(str(problem))
        if problems:
            click.echo(f"{config_file}: {plural(len(problems), 'problem')}", err=True)
        else:
            click.echo(f"{config_file}: OK ({summary})")
            # after the problems are fixed, not among them: a warning is no reason to fail CI
            for warning in warnings:
                click.echo(f"{config_file}: warning: {warning}", err=True)
    raise SystemExit(EXIT_FAILURE if problems else EXIT_OK)


def security_warnings(settings: WorkerSettings) -> list[str]:
    """What a valid file still risks: today, unsigned pickle."""
    if settings.serializer == "pickle" and settings.signing_key is None:
        return [
            'serializer "pickle" runs any code a job payload names when a worker decodes it, so whoever can write '
            "to this Redis can run code on the workers; sign the payloads (set RUNNER_SIGNING_KEY; arq cannot read "
            'signed jobs) or use serializer = "json" or "msgpack"'
        ]
    return []
