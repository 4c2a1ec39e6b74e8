"""Field types of worker.toml: durations, memory sizes, import paths, Redis URLs, time zones, cron fields."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from runner.config.problems import mask_url, show_value
from runner.engine.cron_schedule import WEEKDAY_NAMES
from runner.engine.urls import RedisUrlError, parse_redis_url

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
DURATION_PATTERN = r"^\s*-?(\d+(\.\d+)?(ms|s|m|h|d|w)?)+\s*$"
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def parse_duration(value: Any) -> float:
    """Seconds from ``30``, ``1.5``, ``"30"``, ``"30s"``, ``"500ms"``, ``"5m"``, ``"1h30m"``, ``"1d"`` or ``"2w"``.

    Raises:
        PydanticCustomError: the value is not a number or such a string.
    """
    if isinstance(value, bool):
        raise PydanticCustomError(
            "duration_type", f'must be a duration such as 30, "30s", "5m", "1h30m" or "1d" (got {show_value(value)})'
        )
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("-")
        try:
            return sign * float(body)
        except ValueError:
            pass
        total, pos = 0.0, 0
        for match in _DURATION_PART.finditer(body):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if body and pos == len(body):
            return sign * total
    raise PydanticCustomError(
        "duration_format",
        f'must be a duration such as 30, "30s", "5m", "1h30m" or "1d" (got {show_value(value)})',
    )


def _duration(minimum_exclusive: bool) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        seconds = parse_duration(value)
        if minimum_exclusive and seconds <= 0:
            raise PydanticCustomError("duration_positive", f"must be greater than 0 (got {show_value(value)})")
        if not minimum_exclusive and seconds < 0:
            raise PydanticCustomError("duration_negative", f"must not be negative (got {show_value(value)})")
        return seconds

    return check


MIN_LEASE_S = 1.0


def _lease(value: Any) -> float:
    seconds = _duration(minimum_exclusive=True)(value)
    if seconds < MIN_LEASE_S:
        raise PydanticCustomError(
            "lease_minimum",
            f"must be at least {MIN_LEASE_S:g}s; claims are renewed every lease / 3, so a shorter lease hands "
            f"running jobs to other workers (got {show_value(value)})",
        )
    return seconds


def _duration_schema(description: str, minimum_exclusive: bool) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "number"}
    number["exclusiveMinimum" if minimum_exclusive else "minimum"] = 0
    return {
        "anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}],
        "description": description,
    }


Duration = Annotated[
    float,
    BeforeValidator(_duration(minimum_exclusive=True)),
    WithJsonSchema(_duration_schema('Seconds, or a string such as "30s", "5m", "1h30m", "1d"; > 0.', True)),
]
"""A duration greater than zero, stored as float seconds."""

DurationOrZero = Annotated[
    float,
    BeforeValidator(_duration(minimum_exclusive=False)),
    WithJsonSchema(_duration_schema('Seconds, or a string such as "30s", "5m", "1h30m", "1d"; >= 0.', False)),
]
"""A duration that may be zero, stored as float seconds."""


Lease = Annotated[
    float,
    BeforeValidator(_lease),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number", "minimum": MIN_LEASE_S}, {"type": "string", "pattern": DURATION_PATTERN}],
            "description": f"Seconds a claimed job stays claimed without a heartbeat; at least {MIN_LEASE_S:g}s.",
        }
    ),
]
"""The claim lease: a duration of at least a second."""


def _rate_limit(value: Any) -> str:
    from runner.engine.flow import RateLimit
    from runner.errors import InvalidArgument

    try:
        return str(RateLimit.parse(value))
    except InvalidArgument:
        raise PydanticCustomError(
            "rate_limit_format",
            f'must be "<count>/<s|m|h>" with a count above 0, e.g. "100/s", "600/m", "5/h" (got {show_value(value)})',
        ) from None


RateLimitText = Annotated[
    str,
    BeforeValidator(_rate_limit),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*\d+\s*/\s*\d*\s*[smh]\s*$",
            "description": 'Most starts per period across every worker: "100/s", "600/m", "5/h".',
        }
    ),
]
"""A rate limit, ``"<count>/<s|m|h>"``."""


def _strict_bool(value: Any) -> Any:
    # TOML has real booleans: "yes", 1 or "on" are mistakes, not spellings of true. Environment values are text, so
    # the words true and false are read as what they say.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise PydanticCustomError("bool_strict", f"must be true or false (got {show_value(value)})")


Bool = Annotated[bool, BeforeValidator(_strict_bool), WithJsonSchema({"type": "boolean"})]
"""A boolean written as true or false (from the environment: the text true or false)."""


_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]*)$")
SIZE_PATTERN = r"^\s*\d+(\.\d+)?\s*([KMG]i?B?|[KMG]B|B)?\s*$"
_SMALLEST_SIZE = 1024**2  # less than this is a missing unit, not a memory limit


def parse_byte_size(value: Any) -> int:
    """Bytes from ``"512MB"``, ``"512MiB"``, ``"2G"``, ``"1.5GiB"`` or a number of bytes (at least 1 MiB).

    Raises:
        PydanticCustomError: the value is not a size, or is too small to be meant as bytes.
    """
    example = 'a size such as "512MB", "512MiB" or "2GiB"'
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PydanticCustomError("size_type", f"must be {example} (got {show_value(value)})")
    if isinstance(value, str):
        match = _SIZE.match(value.strip().lower())
        if not match or match.group(2) not in _SIZE_UNITS and match.group(2) != "":
            raise PydanticCustomError("size_format", f"must be {example} (got {show_value(value)})")
        size = int(float(match.group(1)) * _SIZE_UNITS.get(match.group(2), 1))
    else:
        size = int(value)
    if size < _SMALLEST_SIZE:
        bare = not isinstance(value, str) or value.strip().isdigit()
        hint = f'; a bare number is bytes: did you mean "{str(value).strip()}MB"?' if bare else ""
        raise PydanticCustomError("size_small", f"must be at least 1MiB (got {show_value(value)}){hint}")
    return size


ByteSize = Annotated[
    int,
    BeforeValidator(parse_byte_size),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": _SMALLEST_SIZE}, {"type": "string", "pattern": SIZE_PATTERN}],
            "description": 'Bytes, or a size such as "512MB", "512MiB", "2GiB"; at least 1 MiB.',
        }
    ),
]
"""A memory size in bytes."""


LogLevelName = Literal["debug", "info", "warning", "error", "critical"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevelName)

LogLevel = Annotated[LogLevelName, BeforeValidator(lambda value: value.lower() if isinstance(value, str) else value)]
"""A logging level by name, in any case: ``"info"``, ``"WARNING"``."""


def check_import_path(value: str) -> str:
    if not _IMPORT_PATH.match(value):
        raise PydanticCustomError("import_path", f'import string "{value}" must be in format "<module>:<attribute>"')
    return value


ImportPath = Annotated[
    str,
    AfterValidator(check_import_path),
    WithJsonSchema({"type": "string", "pattern": _IMPORT_PATH.pattern, "description": 'A "module:attribute" path.'}),
]


def check_redis_url(value: str) -> str:
    """The engine's URL parser decides what a URL means; a file must also name its host and a real port."""
    shown = mask_url(value)
    try:
        parse_redis_url(value)
    except RedisUrlError as exc:
        raise PydanticCustomError("redis_url", f'"{shown}" {exc}') from None
    parts = urlsplit(value)
    if parts.scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise PydanticCustomError("redis_url", f'"{shown}" names no host; use redis://HOST:PORT/DB')
        if parts.port == 0:
            raise PydanticCustomError("redis_url", f'"{shown}" has port 0; use a port from 1 to 65535')
    return value


def embedded_data_dir(url: str, base_dir: Path | None) -> str | None:
    """The data directory of an ``embedded://DIR`` URL in worker.toml: a relative DIR is relative to ``base_dir``,
    the file's directory, so every command that reads the file finds the same server. None for other URLs."""
    try:
        written = parse_redis_url(url).get("embedded_dir")
    except RedisUrlError:
        return None  # the URL itself is reported by check_redis_url
    if written is None:
        return None
    directory = Path(written).expanduser()
    return str(directory if base_dir is None else base_dir / directory)


RedisUrl = Annotated[
    str,
    AfterValidator(check_redis_url),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(redis|rediss|unix|embedded)://",
            "description": "redis://[user@]host[:port][/db], rediss://…, unix:///path/to/socket, embedded://DIR.",
        }
    ),
]


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "timezone", f'unknown time zone "{value}"; use an IANA name such as "UTC" or "Europe/Paris"'
        ) from None
    return value


TimeZoneName = Annotated[
    str,
    AfterValidator(check_timezone),
    WithJsonSchema({"type": "string", "description": 'An IANA time zone name, e.g. "Europe/Paris".'}),
]


def _cron_field(name: str, low: int, high: int, names: tuple[str, ...] = ()) -> Any:
    def check(value: Any) -> int | str | list[int | str]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise PydanticCustomError("cron_field", "must not be an empty list")
        for item in items:
            if isinstance(item, str) and item.lower()[:3] in names:
                continue
            if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
                allowed = f"an integer from {low} to {high}" + (f" or a day name ({', '.join(names)})" if names else "")
                raise PydanticCustomError(
                    "cron_field", f"must be {allowed}, or a list of them (got {show_value(item)})"
                )
        return value  # type: ignore[no-any-return]

    item_schema: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    if names:
        item_schema = {"anyOf": [item_schema, {"type": "string", "enum": list(names)}]}
    schema = {
        "anyOf": [item_schema, {"type": "array", "items": item_schema, "minItems": 1}],
        "description": f"The {name}s to run at: one value or a list.",
    }
    return Annotated[Any, BeforeValidator(check), WithJsonSchema(schema)]


CronMonth = _cron_field("month", 1, 12)
CronDay = _cron_field("day", 1, 31)
CronWeekday = _cron_field("weekday", 0, 6, WEEKDAY_NAMES)
CronHour = _cron_field("hour", 0, 23)
CronMinute = _cron_field("minute", 0, 59)
CronSecond = _cron_field("second", 0, 59)
