"""``runner next-cron``: the next runs of every cron job, in its zone and in UTC, cross-checked with croniter."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import click

from runner.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail, handled
from runner.cli.loading import config_argument, load
from runner.config.build import cron_schedule as schedule_of
from runner.config.cron_check import KNOWN_DIFFERENCES, Comparison, compare
from runner.engine.cron import resolve_tz
from runner.engine.cron_schedule import Schedule
from runner.errors import ConfigError
from runner.text import plural


def _parse_from(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date-time such as 2024-06-01T08:00 or 2024-06-01T08:00+02:00",
            param_hint="--from",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _wall(moment: datetime, micro: bool = True) -> str:
    """``Mon 2024-06-03 08:00:00 +01:00``: weekday, wall time (microseconds only when set) and offset."""
    text = moment.strftime("%a %Y-%m-%d %H:%M:%S")
    if moment.microsecond and micro:
        text += f".{moment.microsecond:06d}"
    offset = moment.strftime("%z")
    return f"{text} {offset[:3]}:{offset[3:]}"


def _utc(moment: datetime, micro: bool = True) -> str:
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond and micro:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def _status(comparison: Comparison) -> str:
    if comparison.agrees:
        return "agrees"
    return "intended" if comparison.intended else "DIFFERS"


def _zone_name(zone: tzinfo) -> str:
    return "UTC" if zone is UTC else str(zone)


def _described(schedule: Schedule) -> str:
    return schedule.expression if schedule.expression is not None else schedule.describe().removeprefix("cron ")


def _text_block(name: str, schedule: Schedule, zone: tzinfo, rows: list[Comparison]) -> list[str]:
    """One job as a table that fits 80 columns: #, local time, UTC, croniter's verdict."""
    shown = f'"{schedule.expression}"' if schedule.expression is not None else _described(schedule)
    header = f"cron.{name}: {shown} in {_zone_name(zone)}"
    # arq-style fields run at a fixed microsecond (123456 by default), which the header already names
    micro = len({row.ours.microsecond for row in rows}) > 1
    lines = [header]
    local_width = max(len(_wall(row.ours.astimezone(zone), micro)) for row in rows)
    utc_width = max(len(_utc(row.ours, micro)) for row in rows)
    lines.append(f"  {'#':>3}  {'local time':<{local_width}}  {'UTC':<{utc_width}}  croniter")
    kinds: list[str] = []
    for row in rows:
        local = _wall(row.ours.astimezone(zone), micro)
        lines.append(
            f"  {row.index + 1:>3}  {local:<{local_width}}  {_utc(row.ours, micro):<{utc_width}}  {_status(row)}"
        )
        if row.agrees:
            continue
        if row.theirs is None:
            lines.append(f"       {row.error}")
        else:
            note = f" ({row.kind})" if row.kind else " (unexplained)"
            lines.append(f"       croniter: {_wall(row.theirs.astimezone(zone))}{note}")
        if row.kind and row.kind not in kinds:
            kinds.append(row.kind)
    for kind in kinds:
        lines.extend(
            textwrap.wrap(f"{kind}: {KNOWN_DIFFERENCES[kind]}", 78, initial_indent="  ", subsequent_indent="    ")
        )
    return lines


def _json_job(name: str, schedule: Schedule, zone: tzinfo, rows: list[Comparison]) -> dict[str, Any]:
    return {
        "name": name,
        "schedule": _described(schedule),
        "tz": _zone_name(zone),
        "runs": [
            {
                "local": row.ours.astimezone(zone).isoformat(),
                "utc": row.ours.astimezone(UTC).isoformat(),
                "croniter": None if row.theirs is None else row.theirs.astimezone(zone).isoformat(),
                "status": "agrees" if row.agrees else "intended" if row.intended else "differs",
                "kind": row.kind,
                "reason": row.reason,
                "error": row.error,
            }
            for row in rows
        ],
    }


@click.command("next-cron")
@config_argument
@click.option("--count", "-n", type=click.IntRange(1, 1000), default=5, show_default=True, help="Runs per cron job.")
@click.option(
    "--from",
    "start",
    metavar="DATETIME",
    help="Start after this ISO 8601 time (UTC unless it has an offset); default now.",
)
@click.option(
    "--tz",
    "zone_name",
    metavar="ZONE",
    help="Zone for cron jobs without tz (default: worker.toml's timezone, else UTC).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="A table per cron job, or one JSON document.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks of unexpected errors.")
def next_cron(
    config_file: Path, count: int, start: str | None, zone_name: str | None, output_format: str, verbose: bool
) -> None:
    """List the next runs of every cron job, cross-checked with croniter."""
    after = _parse_from(start)
    try:
        override = resolve_tz(zone_name, "--tz")
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    with handled(EXIT_FAILURE, verbose):
        settings = load(config_file).settings
        jobs = []
        for name, entry in settings.cron.items():
            zone = resolve_tz(entry.tz, f"cron.{name}.tz") or override or resolve_tz(settings.timezone) or UTC
            schedule = schedule_of(name, entry)
            jobs.append((name, schedule, zone, compare(schedule, after, count, zone)))
    unexplained = sum(1 for *_, rows in jobs for row in rows if not row.agrees and not row.intended)
    if output_format == "json":
        document = {
            "from": after.isoformat(),
            "count": count,
            "ok": not unexplained,
            "jobs": [_json_job(*job) for job in jobs],
        }
        click.echo(json.dumps(document, indent=2))
    else:
        if not jobs:
            click.echo(f"{config_file}: no cron jobs")
        else:
            click.echo("\n\n".join("\n".join(_text_block(*job)) for job in jobs))
        if unexplained:
            click.echo(
                f"{plural(unexplained, 'run')} disagree with croniter for no documented reason; "
                "please report the schedule",
                err=True,
            )
    raise SystemExit(EXIT_FAILURE if unexplained else EXIT_OK)
