"""croniter as an oracle: compare our schedule's runs with croniter's and explain every disagreement.

runner computes schedules with its own code (``runner.engine.cron_schedule``); croniter only checks it, from the
config layer, so neither ``import runner`` nor a running worker imports it. A disagreement is either *intended*
— one of :data:`KNOWN_DIFFERENCES`, each a deliberate, documented choice — or *unexplained*, which is a bug on
one side or the other. ``runner validate`` and ``runner next-cron`` use :func:`compare` / :func:`crosscheck` and
fail only on unexplained disagreements.

Each intended difference is recognised by re-deriving croniter's answer, not by pattern matching: the
schedule is re-read the way croniter reads it and run through our own time engine; DST differences are
recognised from the zone's transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterError

from runner.config.models import CRON_TIME_FIELDS, CronConfig
from runner.engine.cron_schedule import CRONTAB_WEEKDAY_NAMES, MONTH_NAMES, Schedule, resolve_wall_time
from runner.errors import ConfigError

KNOWN_DIFFERENCES: dict[str, str] = {
    "dst-repeated": (
        "when clocks go back, a wall time that occurs twice runs once, at its first occurrence; "
        "croniter runs it again in the repeated hour"
    ),
    "dst-gap": (
        "when clocks go forward, a wall time that does not exist runs once, at the first instant after the gap; "
        "croniter skips it when the hour field is *, and otherwise moves it forward in whole minutes, "
        "keeping its seconds"
    ),
    "equal-range": (
        "a range whose start equals its end (5-5) is that one value, as in cron; croniter reads it as the whole field"
    ),
    "day-or-full-range": (
        "a day field counts as restricted whenever it is not *, as POSIX cron says (so the day-of-month OR "
        "day-of-week rule applies); croniter treats a day field that covers its whole range as *"
    ),
}


@dataclass(frozen=True)
class Comparison:
    """One run of a schedule next to croniter's answer for the same starting point.

    Attributes:
        index: 0 for the first run after the start, 1 for the next, ...
        after: the instant both were asked for the next run after (the previous run of ours).
        ours: our next run (aware, in the schedule's zone).
        theirs: croniter's next run, or None when croniter failed (see ``error``).
        kind: None when both agree or the disagreement is unexplained; else a key of KNOWN_DIFFERENCES.
        error: croniter's error message when it failed.
    """

    index: int
    after: datetime
    ours: datetime
    theirs: datetime | None
    kind: str | None = None
    error: str | None = None

    @property
    def agrees(self) -> bool:
        return self.theirs is not None and _same(self.ours, self.theirs)

    @property
    def intended(self) -> bool:
        """A disagreement listed in KNOWN_DIFFERENCES."""
        return not self.agrees and self.kind is not None

    @property
    def reason(self) -> str | None:
        return None if self.kind is None else KNOWN_DIFFERENCES[self.kind]

    @property
    def status(self) -> str:
        """``agrees``, ``intended: <kind>`` or ``DIFFERS``."""
        if self.agrees:
            return "agrees"
        return f"intended: {self.kind}" if self.kind else "DIFFERS"


Disagreement = Comparison


def compare(schedule: Any, start: datetime, count: int = 100, tz: tzinfo | None = None) -> list[Comparison]:
    """Our next ``count`` runs after ``start``, each next to croniter's next run from the same instant.

    Args:
        schedule: a :class:`Schedule`, or a ``CronJob`` (its schedule and zone are used).
        start: an aware datetime.
        count: how many runs to compare.
        tz: the zone (default: the cron job's, else UTC).
    """
    sched, zone = _unwrap(schedule, tz)
    out: list[Comparison] = []
    after = start
    for index in range(count):
        ours = sched.next_run(after, zone)
        try:
            theirs: datetime | None = oracle_next(sched, after, zone)
            error = None
        except CroniterError as exc:
            theirs, error = None, f"croniter failed: {exc}"
        kind = None
        if theirs is not None and not _same(ours, theirs):
            kind = classify(sched, zone, after, ours, theirs)
        out.append(Comparison(index, after, ours, theirs, kind, error))
        after = ours
    return out


def crosscheck(schedule: Any, start: datetime, count: int = 100, tz: tzinfo | None = None) -> list[Disagreement]:
    """The disagreements among the next ``count`` runs; ``d.intended`` tells a documented one from a bug."""
    return [c for c in compare(schedule, start, count, tz) if not c.agrees]


# -- the oracle --------------------------------------------------------------------------------------------------


def croniter_expression(schedule: Schedule) -> tuple[str, bool]:
    """The expression (6 fields, seconds last) and day_or flag that make croniter compute this schedule.

    A crontab schedule is handed over as written, so croniter parses it independently; arq-style fields are
    spelled out as lists, with croniter's sunday = 0, and day_or=False (arq needs both day fields to match).
    """
    if schedule.expression is not None:
        return schedule.expression, True

    def column(values: tuple[int, ...], full: range) -> str:
        return "*" if values == tuple(full) else ",".join(str(v) for v in values)

    weekdays = tuple(sorted((w + 1) % 7 for w in schedule.weekdays))
    fields = [
        column(schedule.minutes, range(60)),
        column(schedule.hours, range(24)),
        column(schedule.days, range(1, 32)),
        column(schedule.months, range(1, 13)),
        column(weekdays, range(7)),
        column(schedule.seconds, range(60)),
    ]
    return " ".join(fields), False


def oracle_next(schedule: Schedule, after: datetime, tz: tzinfo) -> datetime:
    """croniter's first run strictly after ``after`` (sub-second values added the way our fields mean them)."""
    expression, day_or = croniter_expression(schedule)
    local = after.astimezone(tz)
    if schedule.microseconds == (0,):
        return _croniter_next(expression, day_or, local)
    # croniter works in whole seconds: the run is a matching second S plus a microsecond value, and S + us > after
    # means S > after - 1s; at most one whole second lies in (after - 1s, after], so two seconds always suffice
    probe = local - timedelta(seconds=1)
    for _ in range(2):
        second = _croniter_next(expression, day_or, probe)
        for micro in schedule.microseconds:
            candidate = (second.astimezone(UTC) + timedelta(microseconds=micro)).astimezone(tz)
            if candidate.astimezone(UTC) > after.astimezone(UTC):
                return candidate
        probe = second
    raise AssertionError("unreachable: the second whole second is always after `after`")


def _croniter_next(expression: str, day_or: bool, start: datetime) -> datetime:
    iterator = _ITERATORS.get((expression, day_or))
    if iterator is None:
        if len(_ITERATORS) > 256:
            _ITERATORS.clear()
        iterator = _ITERATORS[(expression, day_or)] = croniter(expression, start, day_or=day_or)
    # start_time resets croniter's position (and zone) each call, so one parsed iterator serves every question
    result: datetime = iterator.get_next(datetime, start_time=start)
    return result


# parsing an expression is most of croniter's cost; a crosscheck asks the same expression many times
_ITERATORS: dict[tuple[str, bool], croniter] = {}


# -- classification ----------------------------------------------------------------------------------------------


def croniter_view(schedule: Schedule) -> Schedule:
    """The schedule as croniter reads it (its field sets and its day-or decision), for our own time engine."""
    if schedule.expression is None:
        return schedule
    it = croniter(schedule.expression, datetime(2000, 1, 1, tzinfo=UTC))
    expanded = it.expanded

    def values(index: int, full: range) -> tuple[int, ...]:
        field = expanded[index]
        return tuple(full) if field == ["*"] else tuple(sorted(int(v) for v in field))

    cron_weekdays = values(4, range(7))
    return Schedule(
        months=values(3, range(1, 13)),
        days=values(2, range(1, 32)),
        weekdays=tuple(sorted((w + 6) % 7 for w in cron_weekdays)),
        hours=values(1, range(24)),
        minutes=values(0, range(60)),
        seconds=values(5, range(60)) if len(expanded) > 5 else (0,),
        microseconds=(0,),
        day_or=expanded[2] != ["*"] and expanded[4] != ["*"],
        day_restricted=expanded[2] != ["*"],
        weekday_restricted=expanded[4] != ["*"],
        expression=schedule.expression,
        seconds_field=schedule.seconds_field,
    )


def classify(schedule: Schedule, tz: tzinfo, after: datetime, ours: datetime, theirs: datetime) -> str | None:
    """The KNOWN_DIFFERENCES key that explains ``ours != theirs`` for the run after ``after``, or None."""
    view = croniter_view(schedule)
    if view != schedule and _same(view.next_run(after, tz), theirs):
        # our own time engine, fed croniter's reading of the fields, gives croniter's answer: the fields differ
        return _parse_difference(schedule, view)
    if _is_repeated_run(view, tz, after, theirs):
        return "dst-repeated"
    if _is_gap_run(view, tz, after, theirs):
        return "dst-gap"
    return None


def _parse_difference(schedule: Schedule, view: Schedule) -> str | None:
    assert schedule.expression is not None
    fields_differ = (
        schedule.months != view.months
        or schedule.days != view.days
        or schedule.weekdays != view.weekdays
        or schedule.hours != view.hours
        or schedule.minutes != view.minutes
        or schedule.seconds != view.seconds
    )
    if fields_differ and _has_equal_range(schedule.expression):
        return "equal-range"
    if not fields_differ and schedule.day_or != view.day_or:
        # only the OR rule differs: croniter collapsed a full-range day field to *
        return "day-or-full-range"
    if schedule.day_or != view.day_or and _covers_whole_range(schedule):
        return "day-or-full-range"
    return None


def _has_equal_range(expression: str) -> bool:
    """Whether some range's start and end name the same value (``5-5``, ``4-thu``, ``7-sun``)."""
    columns = expression.split()
    for index, column in enumerate(columns):
        names = {3: MONTH_NAMES, 4: CRONTAB_WEEKDAY_NAMES}.get(index, ())
        first_value = 1 if index == 3 else 0
        for item in column.split(","):
            start, dash, end = item.partition("/")[0].partition("-")
            if not dash:
                continue
            values = [_value(part, names, first_value) for part in (start, end)]
            if index == 4:
                values = [None if v is None else v % 7 for v in values]
            if values[0] is not None and values[0] == values[1]:
                return True
    return False


def _value(text: str, names: tuple[str, ...], first_value: int) -> int | None:
    if text.isdigit():
        return int(text)
    lowered = text.lower()
    return names.index(lowered) + first_value if lowered in names else None


def _covers_whole_range(schedule: Schedule) -> bool:
    return schedule.days == tuple(range(1, 32)) or schedule.weekdays == tuple(range(7))


def _is_repeated_run(view: Schedule, tz: tzinfo, after: datetime, theirs: datetime) -> bool:
    """croniter ran a repeated wall time a second time, after its first occurrence already ran."""
    local = theirs.astimezone(tz)
    wall = local.replace(tzinfo=None, fold=0)
    if local.fold != 1 or not view.matches(wall):
        return False
    first = resolve_wall_time(wall, tz)
    return first.astimezone(UTC) <= after.astimezone(UTC) < theirs.astimezone(UTC)


def _is_gap_run(view: Schedule, tz: tzinfo, after: datetime, theirs: datetime) -> bool:
    """Our run stands for a wall time inside a DST gap, which croniter skipped or moved to a later time."""
    ours, wall = view.next_run_detail(after, tz)
    if _exists(wall, tz):
        return False
    # croniter lands later than the end of the gap, but no later than our following run
    following = view.next_run(ours, tz)
    return ours.astimezone(UTC) < theirs.astimezone(UTC) <= following.astimezone(UTC)


def _exists(wall: datetime, tz: tzinfo) -> bool:
    aware = wall.replace(tzinfo=tz, fold=0)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def _same(a: datetime, b: datetime) -> bool:
    return a.astimezone(UTC) == b.astimezone(UTC)


def _unwrap(schedule: Any, tz: tzinfo | None) -> tuple[Schedule, tzinfo]:
    if isinstance(schedule, Schedule):
        return schedule, tz or UTC
    inner = schedule.schedule
    return inner, tz or getattr(schedule, "tz", None) or UTC


# -- a worker.toml's [cron.<name>] entries ---------------------------------------------------------------------------

KeyPath = tuple[str, ...]
CROSSCHECK_RUNS = 24  # enough to cross a day, a week boundary and most field wrap-arounds, and still quick


def _sentence(message: str) -> str:
    message = message.strip().removesuffix(".")
    return message[:1].lower() + message[1:]


def _quartz_hint(expression: str | None) -> str:
    """A hint when a refused six- or seven-field expression reads right with seconds first (Quartz, Spring)."""
    fields = (expression or "").split()
    if len(fields) == 7:  # Quartz's optional year
        fields = fields[:6]
    if len(fields) != 6:
        return ""
    moved = " ".join([*fields[1:], fields[0]])
    try:
        Schedule.from_crontab(moved)
    except (ConfigError, ValueError, TypeError):
        return ""
    return f'; seconds go last here (croniter\'s order), first in Quartz and Spring: did you mean "{moved}"?'


def schedule_problems(name: str, entry: CronConfig, default_tz: str | None) -> list[tuple[KeyPath, str]]:
    """Problems with the schedule of ``[cron.<name>]``: it must parse, and agree with croniter."""
    path: KeyPath = ("cron", name, "schedule") if entry.schedule is not None else ("cron", name)
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
        return [(path, _sentence(str(exc)) + _quartz_hint(entry.schedule))]
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
