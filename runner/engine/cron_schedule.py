"""Cron schedules: parsed from arq-style fields or a crontab string, and the next run computed by our own code.

A :class:`Schedule` is a set of allowed values per calendar field. Finding the next run is done in two steps:

1. find the next *wall-clock* time (a naive datetime) whose fields all match, by walking month → day → time;
2. turn that wall time into an instant in the schedule's zone, with the DST rules below.

DST rules (the same for every schedule):

* a wall time that does not exist (spring forward) runs once, at the first valid instant after the gap
  (with New York's 02:00 → 03:00 jump, ``30 2 * * *`` runs at 03:00 EDT; ``* * * * *`` runs once at 03:00);
* a wall time that occurs twice (fall back) runs once, at its first occurrence
  (``30 1 * * *`` runs at 01:30 EDT, not again at 01:30 EST; ``*/15 * * * *`` pauses for the repeated hour).

croniter is never used here; it is only the oracle that ``runner.config.cron_check`` compares against.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from runner.errors import ConfigError

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# arq numbering (Python's date.weekday()): 0 = monday … 6 = sunday
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# arq's own spellings (``arq.typing.WEEKDAYS``), accepted as well
ARQ_WEEKDAY_NAMES = ("mon", "tues", "wed", "thurs", "fri", "sat", "sun")
_FULL_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# crontab numbering: 0 (and 7) = sunday … 6 = saturday
CRONTAB_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# how far ahead a schedule may need to look: Feb 29 on a given weekday can be 40 years away (2096 → 2136)
_MAX_SEARCH_YEARS = 100

FieldValue = int | str | Iterable[int | str] | None


@dataclass(frozen=True)
class _FieldSpec:
    name: str  # as the user wrote it: the arq keyword, or the crontab column name
    low: int
    high: int


_FIELD_SPECS = {
    "month": _FieldSpec("month", 1, 12),
    "day": _FieldSpec("day", 1, 31),
    "weekday": _FieldSpec("weekday", 0, 6),
    "hour": _FieldSpec("hour", 0, 23),
    "minute": _FieldSpec("minute", 0, 59),
    "second": _FieldSpec("second", 0, 59),
    "microsecond": _FieldSpec("microsecond", 0, 999_999),
}


def _full(field: str) -> tuple[int, ...]:
    spec = _FIELD_SPECS[field]
    return tuple(range(spec.low, spec.high + 1))


@dataclass(frozen=True)
class Schedule:
    """When a cron job runs: the allowed values of each field, as sorted tuples.

    Build one with :meth:`from_fields` (arq's keywords) or :meth:`from_crontab` (a crontab string); both give
    the same kind of object. Weekdays are stored in arq's numbering (0 = monday).

    Attributes:
        day_or: True when both day-of-month and day-of-week are restricted in a crontab string: a day then
            matches if *either* field matches (standard cron). arq-style fields always need both to match.
        day_restricted: the day-of-month field was given (not ``*`` / None).
        weekday_restricted: the day-of-week field was given (not ``*`` / None).
        expression: the crontab string as written, or None for arq-style fields.
        seconds_field: a crontab string had the optional sixth (seconds) field.
    """

    months: tuple[int, ...]
    days: tuple[int, ...]
    weekdays: tuple[int, ...]
    hours: tuple[int, ...]
    minutes: tuple[int, ...]
    seconds: tuple[int, ...]
    microseconds: tuple[int, ...]
    day_or: bool = False
    day_restricted: bool = False
    weekday_restricted: bool = False
    expression: str | None = None
    seconds_field: bool = False

    # -- building --------------------------------------------------------------------------------------------------

    @classmethod
    def from_fields(
        cls,
        *,
        month: FieldValue = None,
        day: FieldValue = None,
        weekday: FieldValue = None,
        hour: FieldValue = None,
        minute: FieldValue = None,
        second: FieldValue = 0,
        microsecond: FieldValue = 123_456,
        label: str = "cron",
    ) -> Schedule:
        """A schedule from arq-style fields: each an int, a set/list of ints, or None for "any".

        ``weekday`` takes 0–6 (monday–sunday) or ``"mon"``…``"sun"``. A day must match both ``day`` and
        ``weekday`` when both are given (arq's meaning).

        Raises:
            ConfigError: a value is out of range or of the wrong type, or the schedule can never run.
        """
        values = {
            "month": month,
            "day": day,
            "weekday": weekday,
            "hour": hour,
            "minute": minute,
            "second": second,
            "microsecond": microsecond,
        }
        fields = {name: _field_values(label, name, value) for name, value in values.items()}
        schedule = cls(
            months=fields["month"],
            days=fields["day"],
            weekdays=fields["weekday"],
            hours=fields["hour"],
            minutes=fields["minute"],
            seconds=fields["second"],
            microseconds=fields["microsecond"],
            day_or=False,
            day_restricted=day is not None,
            weekday_restricted=weekday is not None,
        )
        schedule._check_possible(label, "day")
        return schedule

    @classmethod
    def from_crontab(cls, text: str) -> Schedule:
        """A schedule from a crontab string.

        Five fields ``minute hour day-of-month month day-of-week``, or six with ``second`` as the *last* field
        (croniter's order; Quartz and Spring put seconds first, runner does not). Each field takes ``*``,
        numbers, ``a-b`` ranges, ``*/n``, ``a-b/n`` and ``a/n`` steps, comma lists, and names (``jan``…``dec``,
        ``sun``…``sat``, any case). Day-of-week takes 0–7 (0 and 7 are sunday). ``?`` means ``*`` in the day
        fields. ``@yearly``, ``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and ``@hourly``
        are accepted. When both day fields are restricted, a day matches if either does (standard cron).

        Raises:
            ConfigError: the string is malformed; the message names the field and the value.
        """
        if not isinstance(text, str):
            raise ConfigError(f'cron schedule must be a string like "0 8 * * mon-fri" (got {text!r})')
        label = f'cron "{text}"'
        stripped = text.strip()
        if stripped.startswith("@"):
            if stripped.lower() == "@reboot":
                raise ConfigError(f"{label}: @reboot is not a schedule; use run_at_startup = true instead")
            if stripped.lower() not in ALIASES:
                raise ConfigError(f"{label}: unknown alias {stripped}; use one of {', '.join(ALIASES)}")
            stripped = ALIASES[stripped.lower()]
        parts = stripped.split()
        if len(parts) not in (5, 6):
            raise ConfigError(
                f"{label}: expected 5 fields (minute hour day-of-month month day-of-week) "
                f"or 6 with seconds last, got {len(parts)}"
            )
        minute_s, hour_s, day_s, month_s, weekday_s = parts[:5]
        second_s = parts[5] if len(parts) == 6 else "0"
        minutes = _parse_crontab_field(label, "minute", minute_s, 0, 59)
        hours = _parse_crontab_field(label, "hour", hour_s, 0, 23)
        days = _parse_crontab_field(label, "day-of-month", day_s, 1, 31, allow_question=True)
        months = _parse_crontab_field(label, "month", month_s, 1, 12, names=MONTH_NAMES, names_start=1)
        cron_weekdays = _parse_crontab_field(
            label, "day-of-week", weekday_s, 0, 7, names=CRONTAB_WEEKDAY_NAMES, allow_question=True, step_high=6
        )
        seconds = _parse_crontab_field(label, "second", second_s, 0, 59)
        # crontab 0/7 = sunday, 1 = monday → arq 6 = sunday, 0 = monday
        weekdays = tuple(sorted({(w + 6) % 7 for w in cron_weekdays}))
        day_restricted = day_s not in ("*", "?")
        weekday_restricted = weekday_s not in ("*", "?")
        schedule = cls(
            months=months,
            days=days,
            weekdays=weekdays,
            hours=hours,
            minutes=minutes,
            seconds=seconds,
            microseconds=(0,),
            day_or=day_restricted and weekday_restricted,
            day_restricted=day_restricted,
            weekday_restricted=weekday_restricted,
            expression=text,
            seconds_field=len(parts) == 6,
        )
        schedule._check_possible(label, "day-of-month")
        return schedule

    def _check_possible(self, label: str, day_name: str) -> None:
        if self.day_or:
            return  # any weekday occurs in every month
        longest = max(_days_in_month(2000, m) for m in self.months)  # 2000 is a leap year: Feb has 29
        if min(self.days) > longest:
            month_list = ",".join(MONTH_NAMES[m - 1] for m in self.months)
            raise ConfigError(
                f"{label}: {day_name} {min(self.days)} never occurs in month {month_list}, so it never runs"
            )

    # -- matching --------------------------------------------------------------------------------------------------

    def matches_date(self, day: date) -> bool:
        """Whether the schedule runs at some time of this calendar day."""
        if day.month not in self.months:
            return False
        day_ok = day.day in self.days
        weekday_ok = day.weekday() in self.weekdays
        if self.day_or:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def matches(self, wall: datetime) -> bool:
        """Whether this wall-clock time (naive, in the schedule's zone) is one of the schedule's times."""
        return (
            self.matches_date(wall.date())
            and wall.hour in self.hours
            and wall.minute in self.minutes
            and wall.second in self.seconds
            and wall.microsecond in self.microseconds
        )

    def next_wall_time(self, start: datetime) -> datetime:
        """The first matching wall-clock time at or after ``start`` (naive), ignoring time zones."""
        day = start.date()
        earliest: time | None = start.time()
        limit = day.year + _MAX_SEARCH_YEARS
        while day.year <= limit:
            if day.month not in self.months:
                month_index = bisect_left(self.months, day.month)
                if month_index == len(self.months):
                    day = date(day.year + 1, self.months[0], 1)
                else:
                    day = date(day.year, self.months[month_index], 1)
                earliest = None
                continue
            if self.matches_date(day):
                found = self._first_time(earliest)
                if found is not None:
                    return datetime.combine(day, found)
            day += timedelta(days=1)
            earliest = None
        raise ConfigError(f"{self.describe()}: no run within {_MAX_SEARCH_YEARS} years of {start:%Y-%m-%d}")

    def _first_time(self, earliest: time | None) -> time | None:
        """The first allowed time of day at or after ``earliest`` (None = midnight), or None if none is left."""
        levels = (self.hours, self.minutes, self.seconds, self.microseconds)
        if earliest is None:
            return _time(level[0] for level in levels)
        wanted = (earliest.hour, earliest.minute, earliest.second, earliest.microsecond)
        return _first_at_or_after(levels, wanted)

    # -- instants --------------------------------------------------------------------------------------------------

    def next_run(self, after: datetime, tz: tzinfo | None = None) -> datetime:
        """The first run strictly after ``after``, as an aware datetime in ``tz`` (default UTC).

        Args:
            after: an aware datetime.
            tz: the zone whose wall clock the schedule's fields describe.

        Raises:
            ValueError: ``after`` is naive.
        """
        return self.next_run_detail(after, tz)[0]

    def next_run_detail(self, after: datetime, tz: tzinfo | None = None) -> tuple[datetime, datetime]:
        """Like :meth:`next_run`, also returning the matched wall time (naive; it may lie in a DST gap)."""
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"next_run needs an aware datetime (got naive {after.isoformat()})")
        zone = tz or UTC
        local = after.astimezone(zone)
        wall = local.replace(tzinfo=None, fold=0)
        start = wall
        if local.fold == 1 and _offsets(wall, zone)[0] != _offsets(wall, zone)[1]:
            # `after` is in the repeated hour's second pass: every wall time of that hour already ran in the
            # first pass, so the search starts where the repetition ends
            start = _end_of_fold(wall, zone)
        while True:
            candidate = self.next_wall_time(start)
            instant = resolve_wall_time(candidate, zone)
            # compare in UTC: aware datetimes sharing a tzinfo compare by wall time and ignore fold
            if instant.astimezone(UTC) > after.astimezone(UTC):
                return instant, candidate
            start = candidate + timedelta(microseconds=1)

    def runs(self, after: datetime, count: int, tz: tzinfo | None = None) -> list[datetime]:
        """The next ``count`` runs after ``after`` (see :meth:`next_run`)."""
        out: list[datetime] = []
        current = after
        for _ in range(count):
            current = self.next_run(current, tz)
            out.append(current)
        return out

    # -- display ---------------------------------------------------------------------------------------------------

    def describe(self) -> str:
        """The crontab string, or the arq-style fields that differ from "any", for messages and tables."""
        if self.expression is not None:
            return f'cron "{self.expression}"'
        parts = []
        for name, values in self._field_items():
            if values != _full(name):
                shown = [WEEKDAY_NAMES[v] for v in values] if name == "weekday" else [str(v) for v in values]
                parts.append(f"{name}={shown[0] if len(shown) == 1 else '{' + ','.join(shown) + '}'}")
        return "cron " + (" ".join(parts) if parts else "every microsecond")

    def _field_items(self) -> list[tuple[str, tuple[int, ...]]]:
        return [
            ("month", self.months),
            ("day", self.days),
            ("weekday", self.weekdays),
            ("hour", self.hours),
            ("minute", self.minutes),
            ("second", self.seconds),
            ("microsecond", self.microseconds),
        ]


def _first_at_or_after(levels: tuple[tuple[int, ...], ...], wanted: tuple[int, ...]) -> time | None:
    found = _odometer(levels, wanted, 0)
    return None if found is None else _time(found)


def _time(values: Iterable[int]) -> time:
    hour, minute, second, microsecond = values
    return time(hour, minute, second, microsecond)


def _odometer(levels: tuple[tuple[int, ...], ...], wanted: tuple[int, ...], depth: int) -> tuple[int, ...] | None:
    # the smallest tuple of allowed values >= wanted (lexicographically), from `depth` down
    allowed = levels[depth]
    for value in allowed[bisect_left(allowed, wanted[depth]) :]:
        if value > wanted[depth]:
            # a higher value here frees every lower level to take its smallest value
            return (value, *(level[0] for level in levels[depth + 1 :]))
        if depth == len(levels) - 1:
            return (value,)
        rest = _odometer(levels, wanted, depth + 1)
        if rest is not None:
            return (value, *rest)
    return None


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _offsets(wall: datetime, zone: tzinfo) -> tuple[timedelta, timedelta]:
    first = wall.replace(tzinfo=zone, fold=0).utcoffset()
    second = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert first is not None
    assert second is not None
    return first, second


def resolve_wall_time(wall: datetime, zone: tzinfo) -> datetime:
    """The instant a wall-clock time runs at in ``zone``, with runner's DST rules.

    A time in a DST gap runs at the first instant after the gap; a repeated time runs at its first occurrence.
    """
    before, after = _offsets(wall, zone)
    if before == after or before > after:
        # normal, or repeated (fold=0 is the first occurrence, under the earlier, larger offset)
        return wall.replace(tzinfo=zone, fold=0)
    # a gap: fold=0 reads the wall time with the offset before the jump, which lands past the transition;
    # fold=1 reads it with the offset after, which lands before it. The transition lies between the two.
    late = (wall - before).replace(tzinfo=UTC)
    early = (wall - after).replace(tzinfo=UTC)
    transition = _find_transition(early, late, zone)
    return transition.astimezone(zone)


def _find_transition(early: datetime, late: datetime, zone: tzinfo) -> datetime:
    """The first instant in (early, late] (UTC) whose offset in ``zone`` differs from early's."""
    offset = early.astimezone(zone).utcoffset()
    low = int(early.timestamp())  # offset(low) == offset at early
    high = int(late.timestamp()) + 1
    while high - low > 1:  # invariant: offset(low) == early's, offset(high) differs
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _end_of_fold(wall: datetime, zone: tzinfo) -> datetime:
    """The first wall time after the repeated span that contains ``wall`` (a naive, repeated wall time)."""
    before, after = _offsets(wall, zone)
    # the first pass of `wall` happens before the transition and its second pass after it
    first_pass = (wall - before).replace(tzinfo=UTC)
    second_pass = (wall - after).replace(tzinfo=UTC)
    transition = _find_transition(first_pass, second_pass, zone)
    return (transition + before).replace(tzinfo=None)


# -- parsing helpers ---------------------------------------------------------------------------------------------

_INT_RE = re.compile(r"^[0-9]+$")


def _field_values(label: str, name: str, value: FieldValue) -> tuple[int, ...]:
    spec = _FIELD_SPECS[name]
    if value is None:
        return _full(name)
    items: Iterable[Any]
    if isinstance(value, int | str):
        items = [value]
    elif isinstance(value, set | frozenset | list | tuple | range):
        items = value
        if not items:
            raise ConfigError(f"{label}: {name} is empty; use None (or leave it out) for any {name}")
    else:
        raise ConfigError(f"{label}: {name} must be an int, a set or list of ints, or None (got {value!r})")
    out: set[int] = set()
    for item in items:
        if isinstance(item, bool):
            raise ConfigError(f"{label}: {name} {item!r} is not a number")
        if isinstance(item, str) and name == "weekday":
            lowered = item.strip().lower()
            if lowered in _FULL_WEEKDAY_NAMES or lowered in ARQ_WEEKDAY_NAMES:
                lowered = lowered[:3]
            if lowered not in WEEKDAY_NAMES:
                raise ConfigError(f"{label}: weekday {item!r} is not a day name; use mon, tue, wed, thu, fri, sat, sun")
            out.add(WEEKDAY_NAMES.index(lowered))
            continue
        if not isinstance(item, int):
            raise ConfigError(f"{label}: {name} {item!r} is not a whole number")
        if not spec.low <= item <= spec.high:
            hint = " (0 = monday … 6 = sunday)" if name == "weekday" else ""
            raise ConfigError(f"{label}: {name} {item} is out of range {spec.low}-{spec.high}{hint}")
        out.add(item)
    return tuple(sorted(out))


def _parse_value(label: str, column: str, token: str, names: tuple[str, ...], names_start: int) -> int:
    if _INT_RE.match(token):
        return int(token)
    lowered = token.lower()
    if names and lowered in names:
        return names.index(lowered) + names_start
    if names:
        raise ConfigError(f"{label}: {column} {token!r} is not a number or a name ({names[0]}…{names[-1]})")
    if token.upper() in ("L", "W") or "#" in token or token.upper().startswith("H"):
        raise ConfigError(f"{label}: {column} {token!r} uses an extension runner does not support (L, W, #, H)")
    raise ConfigError(f"{label}: {column} {token!r} is not a number")


def _parse_crontab_field(
    label: str,
    column: str,
    text: str,
    low: int,
    high: int,
    *,
    names: tuple[str, ...] = (),
    names_start: int = 0,
    allow_question: bool = False,
    step_high: int | None = None,
) -> tuple[int, ...]:
    """One crontab column as sorted allowed values; ``step_high`` caps ``*/n`` and ``a/n`` (day-of-week: 6)."""
    if text == "?" and allow_question:
        text = "*"
    span_high = high if step_high is None else step_high
    out: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ConfigError(f"{label}: {column} {text!r} has an empty list item")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not _INT_RE.match(step_text):
                raise ConfigError(f"{label}: {column} step {step_text!r} in {item!r} is not a number")
            step = int(step_text)
            if step == 0:
                raise ConfigError(f"{label}: {column} step 0 in {item!r} must be at least 1")
        if base == "*":
            first, last = low, span_high
        elif "-" in base:
            start_text, _, end_text = base.partition("-")
            if not start_text or not end_text:
                raise ConfigError(f"{label}: {column} range {base!r} needs a start and an end, like 1-5")
            first = _parse_value(label, column, start_text, names, names_start)
            last = _parse_value(label, column, end_text, names, names_start)
            if column == "day-of-week" and end_text.lower() == "sun" and first > 0:
                last = 7  # "sat-sun", "fri-sun": sunday closes the week
        else:
            first = _parse_value(label, column, base, names, names_start)
            # "a/n" means from a to the end of the field in steps of n
            last = span_high if slash else first
        for value in (first, last):
            if not low <= value <= high:
                raise ConfigError(f"{label}: {column} {value} is out of range {low}-{high}")
        if first > last:
            raise ConfigError(
                f"{label}: {column} range {base!r} goes backwards; write it as two parts, "
                f"like {first}-{high},{low}-{last}"
            )
        if slash and step > last - first and last > first:
            raise ConfigError(
                f"{label}: {column} step {step} in {item!r} is larger than its range {first}-{last}, "
                f"so it would only run at {first}"
            )
        out.update(range(first, last + 1, step))
    return tuple(sorted(out))
