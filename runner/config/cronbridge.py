"""Turning ``[cron.<name>]`` tables into the engine's cron jobs, and checking their schedules."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from runner.config.models import CRON_TIME_FIELDS, CronConfig
from runner.errors import ConfigError

KeyPath = tuple[str, ...]
CROSSCHECK_RUNS = 24  # enough to cross a day, a week boundary and most field wrap-arounds, and still quick


def _cron_module() -> Any | None:
    try:
        return importlib.import_module("runner.engine.cron")
    except ImportError:
        return None


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


def make_cron(name: str, entry: CronConfig, coroutine: Callable[..., Awaitable[Any]]) -> Any:
    """The engine's ``CronJob`` for ``entry``.

    Raises:
        RuntimeError: the engine has no cron module yet.
        ValueError, TypeError: the engine rejected the schedule.
    """
    module = _cron_module()
    if module is None:
        raise RuntimeError("runner.engine.cron is not available; cron jobs cannot be scheduled")
    kwargs = cron_kwargs(name, entry)
    accepted = inspect.signature(module.cron).parameters
    unknown = [key for key in kwargs if key not in accepted]
    if unknown:
        raise TypeError(f"this version of the cron engine does not support {', '.join(unknown)}")
    return module.cron(coroutine, **kwargs)


def _sentence(message: str) -> str:
    message = message.strip().removesuffix(".")
    return message[:1].lower() + message[1:]


def schedule_problems(name: str, entry: CronConfig, default_tz: str | None) -> list[tuple[KeyPath, str]]:
    """Problems with the schedule of ``[cron.<name>]``: it must parse, and agree with croniter."""
    path: KeyPath = ("cron", name, "schedule") if entry.schedule is not None else ("cron", name)
    try:
        from runner.engine.cron_check import crosscheck
        from runner.engine.cron_schedule import Schedule
    except ImportError:  # the engine's own parser is not there: croniter alone decides
        if entry.schedule is not None and not croniter.is_valid(entry.schedule):
            return [(path, f'"{entry.schedule}" is not a valid cron expression such as "0 8 * * mon-fri"')]
        return []
    try:
        if entry.schedule is not None:
            schedule = Schedule.from_crontab(entry.schedule)
        else:
            fields = {
                field: set(value) if isinstance(value, list) else value
                for field in CRON_TIME_FIELDS
                if (value := getattr(entry, field)) is not None
            }
            schedule = Schedule.from_fields(label=f"cron.{name}", **fields)
    except (ConfigError, ValueError, TypeError) as exc:
        return [(path, _sentence(str(exc)))]
    zone = ZoneInfo(entry.tz or default_tz or "UTC")
    start = datetime.now(zone)
    for disagreement in crosscheck(schedule, start, count=CROSSCHECK_RUNS, tz=zone):
        if not disagreement.intended:
            theirs = "an error" if disagreement.theirs is None else disagreement.theirs.isoformat()
            return [
                (
                    path,
                    f"runner's next run {disagreement.ours.isoformat()} disagrees with croniter's ({theirs}); "
                    "please report this schedule",
                )
            ]
    return []
