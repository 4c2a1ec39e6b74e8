"""``runner schema``: the JSON Schema of worker.toml, for editors and CI."""

from __future__ import annotations

import click

from runner.config.schema import schema_text


@click.command("schema")
def schema() -> None:
    """Print the JSON Schema of worker.toml."""
    click.echo(schema_text(), nl=False)
