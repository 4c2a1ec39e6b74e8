"""``arq.cli``'s names: the help texts and ``watch_reload``; ``cli`` itself is each project's own command."""

from __future__ import annotations

import inspect
from typing import Any

import click
from arq.cli import burst_help, cli, health_check_help, logdict_help, verbose_help, watch_help, watch_reload

DIFFERENCES = {
    "cli is a command group": {"arq": False, "runner": True, "doc": "cli"},
}


async def scenario(env: Any) -> None:
    env.observe("help texts", [burst_help, health_check_help, watch_help, verbose_help, logdict_help])
    env.observe(
        "watch_reload", [inspect.iscoroutinefunction(watch_reload), list(inspect.signature(watch_reload).parameters)]
    )
    env.observe("cli is a click command", isinstance(cli, click.Command))
    env.observe("cli is a command group", isinstance(cli, click.Group))
