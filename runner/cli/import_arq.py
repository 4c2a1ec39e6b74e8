"""``runner import-arq``: an arq ``WorkerSettings`` class as worker.toml."""

from __future__ import annotations

import os
import sys

import click

from runner.cli.exits import EXIT_FAILURE, handled
from runner.config.arq_import import load_arq_settings, translate_arq_settings


@click.command("import-arq")
@click.argument("settings_path", metavar="MODULE.WorkerSettings")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks of unexpected errors.")
def import_arq(settings_path: str, verbose: bool) -> None:
    """Translate an arq WorkerSettings class into worker.toml."""
    # arq's own CLI imports from the current directory, so this does too
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    with handled(EXIT_FAILURE, verbose):
        translation = translate_arq_settings(load_arq_settings(settings_path))
    click.echo(translation.toml(settings_path), nl=False)
    for text in translation.assumptions:
        click.echo(f"note: {text}", err=True)
    for note in translation.notes:
        click.echo(f"warning: not carried over: {note}", err=True)
