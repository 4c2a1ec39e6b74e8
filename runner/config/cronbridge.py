"""Turning ``[cron.<name>]`` tables into the engine's cron jobs, and checking their schedules."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from croniter import croniter

from runner.config.models import CRON_TIME_FIELDS, CronConfig

KeyPath = tuple[str, ...]


def _cron_module() -> Any | None:
    try:
        return importlib.import_module("runner.engine.cron")
    except ImportError:
        return None


def cron_kwargs(name: str, entry: CronConfig) -> dict[str, Any]:
    """The keyword arguments of ``runner.engine.cron.cron`` for ``entry`` (unset options left out)."""
    kwargs: dict[str, Any] = {"name": name, "run_at_startup": entry.run_at_startup, "unique": entry.unique}
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


async def _placeholder(ctx: dict[str, Any]) -> None:
    """Stands in for a cron job's function when only its schedule is checked."""


def schedule_problems(name: str, entry: CronConfig, default_tz: str | None) -> list[tuple[KeyPath, str]]:
    """Problems with the schedule of ``[cron.<name>]``: it must parse, and agree with croniter."""
    problems: list[tuple[KeyPath, str]] = []
    if entry.schedule is not None and not croniter.is_valid(entry.schedule):
        problems.append(
            (("cron", name, "schedule"), f'"{entry.schedule}" is not a valid cron expression such as "0 8 * * mon-fri"')
        )
        return problems
    module = _cron_module()
    if module is None:
        return problems
    try:
        job = make_cron(name, entry, _placeholder)
    except (ValueError, TypeError) as exc:
        key = "schedule" if entry.schedule is not None else ""
        path: KeyPath = ("cron", name, key) if key else ("cron", name)
        message = str(exc).strip().removesuffix(".")
        problems.append((path, message[:1].lower() + message[1:]))
        return problems
    crosscheck = getattr(module, "crosscheck", None)
    if crosscheck is not None:
        try:
            disagreement = crosscheck(job, tz=entry.tz or default_tz)
        except TypeError:
            disagreement = crosscheck(job)
        if disagreement:
            problems.append((("cron", name), f"the schedule disagrees with croniter: {disagreement}"))
    return problems
