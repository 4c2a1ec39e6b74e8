"""arq's ``arq.cron`` under runner: ``cron()``, ``CronJob``, ``next_cron`` and ``Options``.

runner's ``cron()`` also takes a crontab ``schedule`` string, a ``tz`` and ``catch_up``; a schedule without a zone
is read in the worker's ``timezone``, else UTC (arq: the system's local zone).
"""

from __future__ import annotations

from runner.engine.cron import CronJob, Options, cron, next_cron
from runner.typing import WEEKDAYS, OptionType, SecondsTimedelta, WeekdayOptionType, WorkerCoroutine
from runner.utils import import_string, to_seconds

__all__ = [
    "CronJob",
    "Options",
    "cron",
    "next_cron",
    # arq.cron imports these from its sibling modules, so arq code may import them from here too
    "WEEKDAYS",
    "OptionType",
    "SecondsTimedelta",
    "WeekdayOptionType",
    "WorkerCoroutine",
    "import_string",
    "to_seconds",
]
