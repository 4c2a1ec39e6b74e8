"""arq's ``arq.typing`` under runner: the type aliases and protocols arq code annotates with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from runner.engine.cron_schedule import ARQ_WEEKDAY_NAMES

if TYPE_CHECKING:
    from runner.engine.cron import CronJob
    from runner.engine.functions import Function

# a cron field: any value (None), one value, or a set of them
OptionType: TypeAlias = None | set[int] | int
# arq's weekday spellings; runner also reads "tue", "thu" and full names
WEEKDAYS = ARQ_WEEKDAY_NAMES
WeekdayOptionType: TypeAlias = OptionType | Literal["mon", "tues", "wed", "thurs", "fri", "sat", "sun"]
SecondsTimedelta: TypeAlias = int | float | timedelta


class WorkerCoroutine(Protocol):
    """A job function: ``async def job(ctx, *args, **kwargs)``."""

    __qualname__: str

    async def __call__(self, ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> Any: ...


class StartupShutdown(Protocol):
    """A hook: ``async def hook(ctx)``."""

    __qualname__: str

    async def __call__(self, ctx: dict[Any, Any]) -> Any: ...


class WorkerSettingsBase(Protocol):
    """The shape of a settings class (``run_worker(WorkerSettings)``); any ``Worker`` parameter may be set."""

    functions: Sequence[WorkerCoroutine | Function]
    cron_jobs: Sequence[CronJob] | None
    on_startup: StartupShutdown | None
    on_shutdown: StartupShutdown | None


WorkerSettingsType: TypeAlias = dict[str, Any] | type[WorkerSettingsBase]

__all__ = [
    "WEEKDAYS",
    "OptionType",
    "SecondsTimedelta",
    "StartupShutdown",
    "WeekdayOptionType",
    "WorkerCoroutine",
    "WorkerSettingsBase",
    "WorkerSettingsType",
]
