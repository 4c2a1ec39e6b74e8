"""Our schedules against croniter: randomized comparison (seeded) and the crosscheck API."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from runner.config.cron_check import KNOWN_DIFFERENCES, Comparison, compare, crosscheck
from runner.engine.cron_schedule import CRONTAB_WEEKDAY_NAMES, MONTH_NAMES, Schedule
from runner.errors import ConfigError

ZONES = [ZoneInfo(name) for name in ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata")]
ZONES.append(UTC)  # type: ignore[arg-type]
DST_ZONES = ZONES[:3]

# minute, hour, day-of-month, month, day-of-week, second
COLUMNS: list[tuple[int, int, tuple[str, ...]]] = [
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, MONTH_NAMES),
    (0, 7, CRONTAB_WEEKDAY_NAMES),
    (0, 59, ()),
]


def _value(rng: random.Random, value: int, names: tuple[str, ...]) -> str:
    if names and rng.random() < 0.3:
        name = names[value - 1] if names is MONTH_NAMES else names[value % 7]
        return name.upper() if rng.random() < 0.3 else name
    return str(value)


def _token(rng: random.Random, low: int, high: int, names: tuple[str, ...]) -> str:
    roll = rng.random()
    if roll < 0.35:
        return "*"
    if roll < 0.55:
        return _value(rng, rng.randint(low, high), names)
    first, last = sorted((rng.randint(low, high), rng.randint(low, high)))
    if roll < 0.7:
        return f"{_value(rng, first, names)}-{_value(rng, last, names)}"
    if roll < 0.82:
        return f"*/{rng.randint(1, max(1, (high - low) // 2))}"
    if roll < 0.92:
        return f"{first}-{last}/{rng.randint(1, max(1, last - first))}"
    return f"{rng.randint(low, high)}/{rng.randint(1, max(1, (high - low) // 3))}"


def _expression(rng: random.Random) -> str:
    columns = []
    for low, high, names in COLUMNS[:5]:
        tokens = [_token(rng, low, high, names) for _ in range(1 if rng.random() < 0.8 else rng.randint(2, 3))]
        columns.append("*" if "*" in tokens else ",".join(tokens))
    if rng.random() < 0.25:
        columns.append(_token(rng, 0, 59, ()))
    return " ".join(columns)


def _dst_expression(rng: random.Random) -> str:
    columns = _expression(rng).split()
    columns[1] = rng.choice(["*", "1", "2", "0-3", "*/2", "1,2", "2-3", "3"])
    for index in (2, 3, 4):
        if rng.random() < 0.7:
            columns[index] = "*"
    return " ".join(columns)


def _start(rng: random.Random, zone: tzinfo) -> datetime:
    roll = rng.random()
    if roll < 0.4:  # month ends and leap days, including 2100 (not leap) and 2000 (leap)
        year = rng.choice([2000, 2004, 2023, 2024, 2028, 2100])
        month = rng.choice([1, 2, 12])
        day = {1: 31, 2: 28, 12: 31}[month]
        return datetime(year, month, day, 23, rng.randint(0, 59), tzinfo=zone)
    return datetime(
        rng.randint(1999, 2040),
        rng.randint(1, 12),
        rng.randint(1, 28),
        rng.randint(0, 23),
        rng.randint(0, 59),
        rng.randint(0, 59),
        rng.randint(0, 999_999),
        tzinfo=zone,
    )


_TRANSITIONS: dict[tuple[str, int], list[datetime]] = {}


def _transitions(zone: tzinfo, year: int) -> list[datetime]:
    """The instants the zone's UTC offset changes in ``year``: monthly samples, then bisection to the second."""
    if (str(zone), year) in _TRANSITIONS:
        return _TRANSITIONS[(str(zone), year)]

    def offset(moment: datetime) -> timedelta | None:
        return moment.astimezone(zone).utcoffset()

    samples = [datetime(year, month, 1, tzinfo=UTC) for month in range(1, 13)] + [datetime(year + 1, 1, 1, tzinfo=UTC)]
    found = []
    for low, high in zip(samples, samples[1:], strict=False):
        if offset(low) == offset(high):
            continue
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
        found.append(high)
    _TRANSITIONS[(str(zone), year)] = found
    return found


def _near_transition(rng: random.Random, zone: tzinfo) -> datetime:
    transitions = _transitions(zone, rng.randint(2000, 2037))
    transition = rng.choice(transitions)
    return (transition + timedelta(seconds=rng.randint(-4 * 3600, 3600))).astimezone(zone)


def _fields(rng: random.Random) -> dict[str, Any]:
    def pick(low: int, high: int, none_share: float) -> Any:
        roll = rng.random()
        if roll < none_share:
            return None
        if roll < none_share + 0.25:
            return rng.randint(low, high)
        return set(rng.sample(range(low, high + 1), rng.randint(1, 4)))

    return {
        "month": pick(1, 12, 0.7),
        "day": pick(1, 31, 0.7),
        "weekday": pick(0, 6, 0.6),
        "hour": pick(0, 23, 0.4),
        "minute": pick(0, 59, 0.3),
        "second": pick(0, 59, 0.2) if rng.random() < 0.5 else 0,
        "microsecond": rng.choice([0, 123_456, 999_999, {0, 500_000}]),
    }


def _run(cases: list[tuple[Schedule, datetime, tzinfo]]) -> tuple[Counter[str], list[Comparison]]:
    statuses: Counter[str] = Counter()
    unexplained = []
    for schedule, start, zone in cases:
        for comparison in compare(schedule, start, 4, zone):
            statuses[comparison.status] += 1
            if not comparison.agrees and not comparison.intended:
                unexplained.append(comparison)
    return statuses, unexplained


def test_random_crontab_strings_agree_with_croniter_or_differ_as_documented() -> None:
    rng = random.Random(20241103)
    cases = []
    rejected = 0
    for index in range(3000):
        text = _dst_expression(rng) if index % 2 else _expression(rng)
        try:
            schedule = Schedule.from_crontab(text)
        except ConfigError:
            rejected += 1  # steps larger than their range, backwards ranges, Feb 30: refused on purpose
            continue
        zone = rng.choice(DST_ZONES) if index % 2 else rng.choice(ZONES)
        start = _near_transition(rng, zone) if index % 2 else _start(rng, zone)
        cases.append((schedule, start, zone))
    statuses, unexplained = _run(cases)
    assert rejected < 300
    assert not unexplained, "\n".join(
        f"{c.after.isoformat()} ours {c.ours.isoformat()} croniter {c.theirs}" for c in unexplained[:10]
    )
    assert statuses["agrees"] > 10_000
    # every documented difference really occurs, so each classifier is exercised
    for kind in KNOWN_DIFFERENCES:
        assert statuses[f"intended: {kind}"] > 0, kind


def test_random_fields_agree_with_croniter() -> None:
    rng = random.Random(7)
    cases = []
    for _ in range(1500):
        try:
            schedule = Schedule.from_fields(**_fields(rng))
        except ConfigError:
            continue
        zone = rng.choice(ZONES)
        cases.append((schedule, _start(rng, zone), zone))
    statuses, unexplained = _run(cases)
    assert not unexplained
    # fields are spelled out as lists for croniter, so only the DST rules can differ
    assert set(statuses) <= {"agrees", "intended: dst-repeated", "intended: dst-gap"}
    assert statuses["agrees"] > 5000


def test_crosscheck_reports_intended_differences_with_reasons() -> None:
    zone = ZoneInfo("America/New_York")
    start = datetime(2024, 11, 1, tzinfo=zone)
    found = crosscheck(Schedule.from_crontab("30 1 * * *"), start, count=5, tz=zone)
    assert len(found) == 1
    [difference] = found
    assert difference.intended
    assert difference.kind == "dst-repeated"
    assert difference.reason == KNOWN_DIFFERENCES["dst-repeated"]
    assert difference.ours.isoformat() == "2024-11-04T01:30:00-05:00"
    assert difference.theirs is not None
    assert difference.theirs.isoformat() == "2024-11-03T01:30:00-05:00"


def test_crosscheck_of_equal_range_and_day_or() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    [first, *_] = crosscheck(Schedule.from_crontab("5-5 * * * *"), start, count=3)
    assert first.kind == "equal-range"
    assert first.ours.isoformat() == "2024-01-01T00:05:00+00:00"
    [first, *_] = crosscheck(Schedule.from_crontab("0 0 1-31 * */2"), start, count=3)
    assert first.kind == "day-or-full-range"


def test_crosscheck_flags_an_unexplained_difference() -> None:
    # a schedule whose fields contradict its text: croniter reads the text, so they disagree for no listed reason
    honest = Schedule.from_crontab("0 * * * *")
    broken = Schedule(**{**honest.__dict__, "minutes": (30,)})
    found = crosscheck(broken, datetime(2024, 1, 1, tzinfo=UTC), count=2)
    assert [(c.intended, c.kind, c.status) for c in found] == [(False, None, "DIFFERS")] * 2


def test_crosscheck_agrees_on_ordinary_schedules() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for text in ("0 8 * * mon-fri", "*/5 * * * *", "0 0 29 2 *", "15 10 1,15 * *", "@weekly"):
        assert crosscheck(Schedule.from_crontab(text), start, count=100) == []
