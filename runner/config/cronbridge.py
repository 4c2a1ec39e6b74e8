"""Turning ``[cron.<name>]`` tables into the engine's cron jobs (their schedules are checked in cron_check.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner.config.models import CRON_TIME_FIELDS, CronConfig
from runner.engine.cron import CronJob, cron


def cron_kwargs(name: str, entry: CronConfig) -> dict[str, Any]:
    """The keyword arguments of ``runner.engine.cron.cron`` for ``entry`` (unset options left out)."""
    kwargs: dict[str, Any] = {"name": name, "run_at_startup": entry.run_at_startup, "unique": entry.unique}
    if entry.catch_up:
        kwargs["catch_up"] = True
    if entry.schedule is not None:
        kwargs["schedule"] = entry.schedule
    for field in CRON_TIME_FIELDS:
        value = getattr(entry, field)
        if value is not None:
            kwargs[field] = set(value) if isinstance(value, list) else value
    for field in ("tz", "job_id", "timeout", "max_tries", "keep_result", "keep_result_forever"):
        value = getattr(entry, field)
        if value is not None:
            kwargs[field] = value
    return kwargs


def make_cron(
    name: str, entry: CronConfig, coroutine: Callable[..., Any] | str, executor: str | None = None
) -> CronJob:
    """The engine's ``CronJob`` for ``entry``.

    Raises:
        ConfigError, TypeError: the engine rejected the schedule or the function.
    """
    return cron(coroutine, executor=executor, **cron_kwargs(name, entry))  # type: ignore[arg-type]
