"""Schedule parsing and next-run computation: a hand-written table, DST rules, errors, a brute-force reference."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from runner.engine.cron_schedule import Schedule, resolve_wall_time
from runner.errors import ConfigError

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")

# fields shorthand: run on the whole second, like a crontab string
WHOLE = {"second": 0, "microsecond": 0}

# (previous, expected, expression or arq-style fields, zone). Times without an offset are wall times in the zone;
# times with one are exact instants (needed around DST, where a wall time can be missing or repeated).
CASES: list[tuple[str, str, Any, tzinfo]] = [
    ("2024-01-01 00:00:00", "2024-01-01 00:01:00", "* * * * *", UTC),
    ("2024-01-01 00:00:30.5", "2024-01-01 00:01:00", "* * * * *", UTC),
    ("2024-01-01 00:04:59", "2024-01-01 00:05:00", "*/5 * * * *", UTC),
    ("2024-01-01 00:05:00", "2024-01-01 00:10:00", "*/5 * * * *", UTC),  # strictly after
    ("2024-01-01 23:30:00", "2024-01-02 00:00:00", "0 * * * *", UTC),
    ("2024-01-01 10:00:00", "2024-01-01 11:00:00", "@hourly", UTC),
    ("2024-12-31 12:00:00", "2025-01-01 00:00:00", "0 0 * * *", UTC),
    ("2024-02-28 00:00:00", "2024-02-29 00:00:00", "@daily", UTC),  # leap year
    ("2023-02-28 00:00:00", "2023-03-01 00:00:00", "@midnight", UTC),
    ("2024-01-01 00:00:00", "2024-01-07 00:00:00", "@weekly", UTC),  # monday → sunday
    ("2024-01-31 12:00:00", "2024-02-01 00:00:00", "@monthly", UTC),
    ("2024-06-15 08:00:00", "2025-01-01 00:00:00", "@yearly", UTC),
    ("2024-12-31 23:59:59", "2025-01-01 00:00:00", "@annually", UTC),
    ("2024-03-01 00:00:00", "2028-02-29 00:00:00", "0 0 29 2 *", UTC),
    ("2096-03-01 00:00:00", "2104-02-29 00:00:00", "0 0 29 2 *", UTC),  # 2100 is not a leap year
    ("2024-01-31 00:00:00", "2024-03-31 00:00:00", "0 0 31 * *", UTC),  # February has no 31st
    ("2024-01-30 12:00:00", "2024-03-30 00:00:00", "0 0 30 * *", UTC),
    ("2024-01-05 13:00:00", "2024-01-08 12:00:00", "0 12 * * mon-fri", UTC),  # friday → monday
    ("2024-01-05 13:00:00", "2024-01-08 12:00:00", "0 12 * * 1-5", UTC),
    ("2024-01-01 00:00:00", "2024-01-06 09:00:00", "0 9 * * sat,sun", UTC),
    ("2024-01-01 00:00:00", "2024-01-07 09:00:00", "0 9 * * 7", UTC),  # 7 is sunday
    ("2024-01-01 00:00:00", "2024-01-07 09:00:00", "0 9 * * 0", UTC),
    ("2024-01-06 09:00:00", "2024-01-07 09:00:00", "0 9 * * sat-sun", UTC),
    ("2024-01-31 00:00:00", "2024-07-01 00:00:00", "0 0 * jan,JUL *", UTC),
    ("2024-03-01 00:00:00", "2025-01-01 00:00:00", "0 0 1 JAN-MAR *", UTC),
    ("2024-01-01 00:00:00", "2024-01-05 00:00:00", "0 0 13 * fri", UTC),  # OR: the first friday comes first
    ("2024-09-06 00:00:00", "2024-09-13 00:00:00", "0 0 13 * fri", UTC),
    ("2024-01-01 00:00:00", "2024-01-03 00:00:00", "0 0 1,15 * 3", UTC),  # OR: wednesday the 3rd
    ("2024-01-01 00:00:00", "2024-01-03 00:00:00", "0 0 */2 * 1", UTC),  # OR: odd day or monday
    ("2024-01-02 00:00:00", "2024-01-08 00:00:00", "0 0 * * 1", UTC),
    ("2024-01-01 00:00:00", "2024-01-08 00:00:00", "0 0 ? * mon", UTC),
    ("2024-01-01 00:00:50", "2024-01-01 00:01:00", "* * * * * */15", UTC),  # sixth field = seconds
    ("2024-01-01 09:30:15", "2024-01-02 09:30:15", "30 9 * * * 15", UTC),
    ("2024-01-01 00:50:00", "2024-01-01 01:05:00", "5/15 * * * *", UTC),
    ("2024-01-01 03:20:00", "2024-01-02 03:10:00", "10-20/5 3 * * *", UTC),
    ("2024-01-01 00:00:00.5", "2024-01-01 00:00:01", "* * * * * *", UTC),
    ("2024-01-05 22:00:00", "2024-01-08 22:00:00", "0 22 * * 1-5", NY),
    ("2024-01-01 05:30:00", "2024-01-02 05:30:00", "30 5 * * *", KOLKATA),
    # arq-style fields: day and weekday must both match
    ("2024-01-01 00:00:00", "2024-09-13 09:00:00.123456", {"day": 13, "weekday": "fri", "hour": 9, "minute": 0}, UTC),
    ("2024-01-01 12:12:00.123456", "2024-01-01 18:12:00.123456", {"hour": {9, 12, 18}, "minute": 12}, UTC),
    ("2024-01-01 18:12:00.5", "2024-01-02 09:12:00.123456", {"hour": [9, 12, 18], "minute": 12}, UTC),
    ("2024-01-01 00:00:31", "2024-01-01 00:01:30", {"second": 30, "microsecond": 0}, UTC),
    ("2024-01-01 08:00:00", "2024-01-08 08:00:00", {"weekday": 0, "hour": 8, "minute": 0, **WHOLE}, UTC),
    ("2024-01-01 08:00:00", "2024-01-07 08:00:00", {"weekday": {"sun"}, "hour": 8, "minute": 0, **WHOLE}, UTC),
    ("2024-02-29 00:00:00", "2028-02-29 00:00:00", {"month": 2, "day": 29, "hour": 0, "minute": 0, **WHOLE}, UTC),
    ("2024-01-01 00:00:00", "2024-01-01 00:00:00.500000", {"second": None, "microsecond": {0, 500_000}}, UTC),
    # DST, spring forward: a missing wall time runs once, at the first instant after the gap
    ("2024-03-09 02:30:00-05:00", "2024-03-10 03:00:00-04:00", "30 2 * * *", NY),
    ("2024-03-10 03:00:00-04:00", "2024-03-11 02:30:00-04:00", "30 2 * * *", NY),
    ("2024-03-10 01:59:00-05:00", "2024-03-10 03:00:00-04:00", "* * * * *", NY),
    ("2024-03-10 03:00:00-04:00", "2024-03-10 03:01:00-04:00", "* * * * *", NY),  # the gap ran once
    ("2024-03-10 01:15:00-05:00", "2024-03-10 03:00:00-04:00", "15 * * * *", NY),
    ("2024-03-09 02:30:00.123456-05:00", "2024-03-10 03:00:00-04:00", {"hour": 2, "minute": 30}, NY),
    ("2024-03-30 01:30:00+00:00", "2024-03-31 02:00:00+01:00", "30 1 * * *", LONDON),
    ("2024-10-05 02:15:00+10:30", "2024-10-06 02:30:00+11:00", "15 2 * * *", LORD_HOWE),  # a 30-minute jump
    # DST, fall back: a repeated wall time runs once, at its first occurrence
    ("2024-11-02 01:30:00-04:00", "2024-11-03 01:30:00-04:00", "30 1 * * *", NY),
    ("2024-11-03 01:30:00-04:00", "2024-11-04 01:30:00-05:00", "30 1 * * *", NY),
    ("2024-11-03 01:40:00-04:00", "2024-11-03 02:00:00-05:00", "*/20 * * * *", NY),
    ("2024-11-03 01:10:00-05:00", "2024-11-03 02:00:00-05:00", "*/20 * * * *", NY),  # starting in the 2nd pass
    ("2024-10-26 01:00:00+01:00", "2024-10-27 01:00:00+01:00", "0 1 * * *", LONDON),
    ("2024-10-27 01:00:00+01:00", "2024-10-28 01:00:00+00:00", "0 1 * * *", LONDON),
    ("2024-04-06 01:45:00+11:00", "2024-04-07 01:45:00+11:00", "45 1 * * *", LORD_HOWE),
    ("2024-04-07 01:45:00+11:00", "2024-04-08 01:45:00+10:30", "45 1 * * *", LORD_HOWE),
    ("2024-04-07 01:50:00+11:00", "2024-04-07 02:00:00+10:30", "*/10 * * * *", LORD_HOWE),
]


def _parse(text: str, zone: tzinfo) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _schedule(spec: Any) -> Schedule:
    return Schedule.from_crontab(spec) if isinstance(spec, str) else Schedule.from_fields(**spec)


def test_table_has_enough_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("previous", "expected", "spec", "zone"), CASES)
def test_next_run_table(previous: str, expected: str, spec: Any, zone: tzinfo) -> None:
    result = _schedule(spec).next_run(_parse(previous, zone), zone)
    want = _parse(expected, zone)
    assert result.astimezone(UTC) == want.astimezone(UTC), f"{result.isoformat()} != {want.isoformat()}"
    assert result.utcoffset() == want.utcoffset()  # returned in the schedule's zone


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 25 * * *", 'cron "0 25 * * *": hour 25 is out of range 0-23'),
        ("60 * * * *", 'cron "60 * * * *": minute 60 is out of range 0-59'),
        ("0 0 0 * *", 'cron "0 0 0 * *": day-of-month 0 is out of range 1-31'),
        ("0 0 * 13 *", 'cron "0 0 * 13 *": month 13 is out of range 1-12'),
        ("0 0 * * 8", 'cron "0 0 * * 8": day-of-week 8 is out of range 0-7'),
        ("* * * * * 61", 'cron "* * * * * 61": second 61 is out of range 0-59'),
        (
            "1 2 3",
            'cron "1 2 3": expected 5 fields (minute hour day-of-month month day-of-week) '
            "or 6 with seconds last, got 3",
        ),
        ("*/0 * * * *", "cron \"*/0 * * * *\": minute step 0 in '*/0' must be at least 1"),
        (
            "*/90 * * * *",
            "cron \"*/90 * * * *\": minute step 90 in '*/90' is larger than its range 0-59, so it would only run at 0",
        ),
        (
            "50-10 * * * *",
            "cron \"50-10 * * * *\": minute range '50-10' goes backwards; write it as two parts, like 50-59,0-10",
        ),
        ("0 0 * foo *", "cron \"0 0 * foo *\": month 'foo' is not a number or a name (jan…dec)"),
        ("0 0 * * funday", "cron \"0 0 * * funday\": day-of-week 'funday' is not a number or a name (sun…sat)"),
        ("0 0 L * *", "cron \"0 0 L * *\": day-of-month 'L' uses an extension runner does not support (L, W, #, H)"),
        ("0 0 31 2 *", 'cron "0 0 31 2 *": day-of-month 31 never occurs in month feb, so it never runs'),
        ("0 0 30 2,4 *", None),  # April has a 30th: fine
        ("@reboot", 'cron "@reboot": @reboot is not a schedule; use run_at_startup = true instead'),
        (
            "@often",
            'cron "@often": unknown alias @often; use one of @yearly, @annually, @monthly, @weekly, @daily, '
            "@midnight, @hourly",
        ),
        ("1,,2 * * * *", "cron \"1,,2 * * * *\": minute '1,,2' has an empty list item"),
        ("1- * * * *", "cron \"1- * * * *\": minute range '1-' needs a start and an end, like 1-5"),
    ],
)
def test_crontab_errors_name_field_and_value(text: str, message: str | None) -> None:
    if message is None:
        Schedule.from_crontab(text)
        return
    with pytest.raises(ConfigError) as info:
        Schedule.from_crontab(text)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hour": 25}, "cron: hour 25 is out of range 0-23"),
        ({"weekday": 7}, "cron: weekday 7 is out of range 0-6 (0 = monday … 6 = sunday)"),
        ({"weekday": "funday"}, "cron: weekday 'funday' is not a day name; use mon, tue, wed, thu, fri, sat, sun"),
        ({"weekday": "monkey"}, "cron: weekday 'monkey' is not a day name; use mon, tue, wed, thu, fri, sat, sun"),
        ({"minute": set()}, "cron: minute is empty; use None (or leave it out) for any minute"),
        ({"minute": 1.5}, "cron: minute must be an int, a set or list of ints, or None (got 1.5)"),
        ({"minute": {True}}, "cron: minute True is not a number"),
        ({"month": 2, "day": 30}, "cron: day 30 never occurs in month feb, so it never runs"),
        ({"microsecond": 1_000_000}, "cron: microsecond 1000000 is out of range 0-999999"),
    ],
)
def test_field_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Schedule.from_fields(**fields)
    assert str(info.value) == message


def test_both_syntaxes_build_the_same_schedule() -> None:
    crontab = Schedule.from_crontab("12 9,12,18 * * mon-fri")
    fields = Schedule.from_fields(hour={9, 12, 18}, minute=12, weekday={0, 1, 2, 3, 4}, second=0, microsecond=0)
    assert (crontab.months, crontab.days, crontab.weekdays, crontab.hours, crontab.minutes, crontab.seconds) == (
        fields.months,
        fields.days,
        fields.weekdays,
        fields.hours,
        fields.minutes,
        fields.seconds,
    )
    start = datetime(2024, 5, 1, tzinfo=UTC)
    assert crontab.runs(start, 20) == fields.runs(start, 20)


def test_or_rule_only_when_both_day_fields_are_restricted() -> None:
    assert Schedule.from_crontab("0 0 13 * fri").day_or
    assert not Schedule.from_crontab("0 0 13 * *").day_or
    assert not Schedule.from_crontab("0 0 * * fri").day_or
    assert not Schedule.from_crontab("0 0 ? * fri").day_or
    assert not Schedule.from_fields(day=13, weekday="fri").day_or  # arq: both must match


def test_weekday_names_in_fields() -> None:
    assert Schedule.from_fields(weekday=["mon", "Friday", 6]).weekdays == (0, 4, 6)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        Schedule.from_crontab("* * * * *").next_run(datetime(2024, 1, 1))


def test_describe() -> None:
    assert Schedule.from_crontab("0 8 * * mon-fri").describe() == 'cron "0 8 * * mon-fri"'
    described = Schedule.from_fields(hour={9, 12}, minute=12, weekday="mon").describe()
    assert described == "cron weekday=mon hour={9,12} minute=12 second=0 microsecond=123456"


# -- an independent reference for the DST rules ------------------------------------------------------------------


def _reference_next(schedule: Schedule, after: datetime, zone: tzinfo) -> datetime:
    """Walk wall-clock minutes one by one and apply the DST rules literally (minute-resolution schedules only)."""
    wall = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) - timedelta(hours=3)
    for _ in range(60 * 24 * 40):
        wall += timedelta(minutes=1)
        if not schedule.matches(wall):
            continue
        instant = wall.replace(tzinfo=zone, fold=0)
        if instant.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
            # missing: the first existing wall minute after it is the end of the gap
            probe = wall
            while True:
                probe += timedelta(minutes=1)
                moment = probe.replace(tzinfo=zone, fold=0)
                if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == probe:
                    instant = moment
                    break
        if instant.astimezone(UTC) > after.astimezone(UTC):
            return instant
    raise AssertionError("no run within 40 days")


@pytest.mark.parametrize("zone_name", ["America/New_York", "Europe/London", "Australia/Lord_Howe"])
def test_dst_rules_match_a_brute_force_reference(zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    rng = random.Random(zone_name)
    expressions = ["* * * * *", "*/7 * * * *", "15 * * * *", "30 1,2 * * *", "0-40/20 2 * * *", "45 0-3 * * *"]
    transitions = [t for year in (2023, 2024) for t in _transitions(zone, year)]
    for expression in expressions:
        schedule = Schedule.from_crontab(expression)
        for transition in transitions:
            after = transition + timedelta(minutes=rng.randint(-150, 60), seconds=rng.randint(0, 59))
            for _ in range(4):
                want = _reference_next(schedule, after, zone)
                got = schedule.next_run(after, zone)
                assert got.astimezone(UTC) == want.astimezone(UTC), (expression, after.isoformat())
                after = got


def _transitions(zone: tzinfo, year: int) -> list[datetime]:
    out = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment.year == year:
        moment += timedelta(minutes=30)
        current = moment.astimezone(zone).utcoffset()
        if current != offset:
            out.append(moment)
            offset = current
    return out


def test_resolve_wall_time_gap_and_fold() -> None:
    assert resolve_wall_time(datetime(2024, 3, 10, 2, 30), NY).isoformat() == "2024-03-10T03:00:00-04:00"
    assert resolve_wall_time(datetime(2024, 11, 3, 1, 30), NY).isoformat() == "2024-11-03T01:30:00-04:00"
    assert resolve_wall_time(datetime(2024, 10, 6, 2, 10), LORD_HOWE).isoformat() == "2024-10-06T02:30:00+11:00"
