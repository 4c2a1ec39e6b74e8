"""``runner init``: a commented starter worker.toml and tasks module."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import click

from runner.cli.exits import fail
from runner.config.schema import schema_text

TEMPLATES = ("worker.toml", "tasks.py")
SCHEMA = "worker.schema.json"  # named by the #:schema line, for editor completion


@click.command("init")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default=Path())
def init(path: Path) -> None:
    """Write a starter worker.toml and tasks module into PATH.

    Also writes worker.schema.json for editor completion. Existing files are never overwritten.
    """
    targets = [path / name for name in (*TEMPLATES, SCHEMA)]
    existing = [str(target) for target in targets if target.exists()]
    if existing:
        verb = "exists" if len(existing) == 1 else "exist"
        fail(f"{', '.join(existing)} already {verb}; remove it or choose another directory")
    path.mkdir(parents=True, exist_ok=True)
    source = files("runner.config").joinpath("templates")
    for name, target in zip(TEMPLATES, targets, strict=False):
        target.write_text(source.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
    targets[2].write_text(schema_text(), encoding="utf-8")
    shown = path / "worker.toml"
    click.echo(f"Created {targets[0]}, {targets[1]} and {targets[2]}.")
    click.echo(f"Check it:  runner validate {shown}")
    click.echo(f"Run it:    runner start {shown}")
