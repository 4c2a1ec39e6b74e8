"""``runner config``: the effective configuration after env overrides, as TOML."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli.exits import EXIT_FAILURE, handled
from runner.cli.loading import config_argument, load
from runner.config.effective import effective_toml


@click.command("config")
@config_argument
@click.option("--show-origin", is_flag=True, help="End each value with where it came from (file:line, env, default).")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks of unexpected errors.")
def config(config_file: Path, show_origin: bool, verbose: bool) -> None:
    """Print the effective configuration as TOML, secrets masked."""
    with handled(EXIT_FAILURE, verbose):
        loaded = load(config_file)
        click.echo(effective_toml(loaded, show_origin=show_origin), nl=False)
