"""Loading a worker.toml for a command: the argument every command that reads one takes, and the load itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from runner.config import LoadedConfig, load_settings

config_argument = click.argument("config_file", metavar="WORKER_TOML", type=click.Path(dir_okay=True, path_type=Path))


def load(config_file: Path, flags: dict[str, Any] | None = None) -> LoadedConfig:
    """Load and schema-check ``config_file``; raises ``ProblemList``."""
    return load_settings(config_file, flags=flags, display_name=str(config_file))
