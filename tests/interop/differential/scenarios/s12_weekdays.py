"""Item 12: arq's weekday spellings, ``"tues"`` and ``"thurs"`` among them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from arq.cron import cron, next_cron
from arq.typing import WEEKDAYS


async def job(ctx: dict[str, Any]) -> None:
    return None


async def scenario(env: Any) -> None:
    env.observe("WEEKDAYS", WEEKDAYS)
    start = datetime(2024, 5, 1, 12, 0)  # a wednesday
    for name in WEEKDAYS:
        env.observe(f"next {name}", next_cron(start, weekday=name, hour=9, minute=0))
    for name in ("tues", "thurs"):
        made = cron(job, weekday=name, hour=9, minute=0)
        made.calculate_next(start)
        env.observe(f"cron {name}", [made.weekday, made.next_run])
