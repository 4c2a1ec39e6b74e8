"""``cron()``, ``CronJob``'s fields, ``calculate_next``, ``next_cron`` against many cases, and ``Options``."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from arq.cron import CronJob, Options, cron, next_cron


async def job(ctx: dict[str, Any]) -> None:
    return None


def cases(seed: int, count: int) -> list[tuple[datetime, dict[str, Any]]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        previous = datetime(2024, 1, 1) + timedelta(
            seconds=rnd.randrange(0, 400 * 86400), microseconds=rnd.randrange(0, 10**6)
        )
        fields: dict[str, Any] = {}
        for name, low, high in (
            ("month", 1, 12),
            ("day", 1, 28),
            ("weekday", 0, 6),
            ("hour", 0, 23),
            ("minute", 0, 59),
            ("second", 0, 59),
        ):
            draw = rnd.random()
            if draw < 0.3:
                fields[name] = rnd.randint(low, high)
            elif draw < 0.45:
                fields[name] = set(rnd.sample(range(low, high + 1), 3))
            elif name == "second" and draw < 0.6:
                fields[name] = None
        if rnd.random() < 0.3:
            fields["microsecond"] = rnd.randrange(0, 10**6)
        if {"month", "day", "weekday"} <= set(fields):
            del fields["weekday"]
        out.append((previous, fields))
    return out


async def scenario(env: Any) -> None:
    made = cron(job, hour={9, 17}, minute=30, run_at_startup=True, timeout=60, max_tries=3, keep_result=5)
    fields = {f.name: getattr(made, f.name) for f in dataclasses.fields(CronJob) if f.name != "coroutine"}
    env.observe("CronJob fields", list(fields)[:16])
    env.observe("cron values", {k: v for k, v in fields.items() if k in list(fields)[:16]})
    env.observe(
        "defaults",
        [
            (
                lambda c: [
                    c.name,
                    c.second,
                    c.microsecond,
                    c.unique,
                    c.keep_result_s,
                    c.max_tries,
                    c.keep_result_forever,
                    c.timeout_s,
                    c.job_id,
                ]
            )(cron(job))
        ],
    )
    made.calculate_next(datetime(2024, 3, 1, 12, 0))
    env.observe("calculate_next", made.next_run)
    made.calculate_next(datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))
    env.observe("calculate_next aware", made.next_run)
    env.observe("Options fields", [f.name for f in dataclasses.fields(Options)])
    env.observe("next_cron", [next_cron(prev, **f).isoformat() for prev, f in cases(7, 200)])
    env.observe("next_cron aware", next_cron(datetime(2024, 1, 1, 23, 59, 59, tzinfo=UTC), minute=0))
    try:
        cron(42)  # type: ignore[arg-type]
    except RuntimeError:
        env.observe("not a function is a RuntimeError", True)
