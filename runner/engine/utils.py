"""Small helpers shared by the engine modules: time, durations, import strings (arq's ``arq.utils`` names), Redis
URLs."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import time
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner.errors import ImportStringError

logger = logging.getLogger("runner.utils")

SecondsTimedelta = int | float | timedelta

# the environment variables that set the zone of the datetimes read back from Redis, first found wins (arq's)
timezone_env_vars = ("ARQ_TIMEZONE", "arq_timezone", "TIMEZONE", "timezone")

# how long an argument list may be in a log line before it is cut
DEFAULT_CURTAIL = 80


def as_int(f: float) -> int:
    """``f`` rounded to the nearest integer (halves to even, as ``round`` does)."""
    return int(round(f))


def timestamp_ms() -> int:
    """Now as integer unix milliseconds, the unit of every score and time on the wire."""
    return round(time.time() * 1000)  # round() of a float is an int already


def to_seconds(value: SecondsTimedelta | None) -> float | None:
    """A duration given as seconds or a timedelta, in seconds: a timedelta's total, a number as given."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value  # a number stays as given, as arq returns it


def to_ms(value: SecondsTimedelta | None) -> int | None:
    """A duration given as seconds or a timedelta, as integer milliseconds (None stays None)."""
    seconds = to_seconds(value)
    return None if seconds is None else as_int(seconds * 1000)


def to_unix_ms(dt: datetime) -> int:
    """A datetime as unix ms; a naive datetime is read as local time, as arq does."""
    return as_int(dt.timestamp() * 1000)


@lru_cache
def get_tz() -> tzinfo | None:
    """The zone named by the first of ``timezone_env_vars`` that is set, or None (then times are UTC).

    Read once and cached, as arq does (``get_tz.cache_clear()`` reads the environment again). arq needs pytz for
    this; runner uses the standard library's zoneinfo, so it always works. An unknown name is logged and skipped.
    """
    for variable in timezone_env_vars:
        name = os.getenv(variable)
        if not name:
            continue
        try:
            return UTC if name.upper() == "UTC" else ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            logger.warning("unknown timezone: %r", name)
    return None


def ms_to_datetime(unix_ms: int) -> datetime:
    """Unix ms as an aware datetime: in the zone of ``get_tz()`` when one is set, else UTC."""
    dt = datetime.fromtimestamp(unix_ms / 1000, tz=UTC)
    zone = get_tz()
    return dt if zone is None else dt.astimezone(zone)


async def poll(step: float = 0.5) -> AsyncGenerator[float, None]:
    """Yield the seconds since the first iteration, then again every ``step`` seconds (less the loop body's time)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        before = loop.time()
        yield before - start
        await asyncio.sleep(max(0.0, step - (loop.time() - before)))


def import_string(dotted_path: str) -> Any:
    """Resolve ``"package.module:attr"`` (``attr`` may be dotted) or arq's ``"package.module.attr"``.

    Raises:
        ImportStringError: the path is malformed, the module cannot be imported, or it lacks the attribute
            (an ``ImportError``, as arq raises).
    """
    path = dotted_path.strip(" ")
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
    else:
        module_name, _, attr_path = path.rpartition(".")
    if not module_name or not attr_path:
        raise ImportStringError(
            f'Import string "{path}" must be in format "<module>:<attribute>" or "<module>.<attribute>".'
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ImportStringError(
                f'Could not import module "{module_name}" for "{path}"; check the name and that it is on sys.path.'
            ) from exc
        raise ImportStringError(f'Importing module "{module_name}" for "{path}" failed: {exc}.') from exc
    except Exception as exc:  # the user's module raised while importing
        raise ImportStringError(
            f'Importing module "{module_name}" for "{path}" failed: {type(exc).__name__}: {exc}.'
        ) from exc
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportStringError(f'Attribute "{attr_path}" not found in module "{module_name}".') from None
    return obj


def truncate(s: str, length: int = DEFAULT_CURTAIL) -> str:
    """``s`` cut to ``length`` characters, the last one an ellipsis when it was longer."""
    return s if len(s) <= length else s[: length - 1] + "…"


def args_to_string(args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """A job's arguments as they would be written in a call, cut to ``DEFAULT_CURTAIL`` characters."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in sorted(kwargs.items())]
    return truncate(", ".join(parts))


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``.

    Parsing is not trusted here: a password with an unencoded ``#``, ``/`` or ``?`` ends the URL's host part early,
    and a parser would then see no password at all. Everything between ``scheme://user:`` and the last ``@`` is
    masked, so no part of such a password is ever shown.
    """
    scheme, sep, rest = url.partition("://")
    userinfo, at, after = rest.rpartition("@")
    if not sep or not at:
        return url
    user, colon, password = userinfo.partition(":")
    if not colon or not password:
        return url
    return f"{scheme}://{user}:***@{after}"


def credentials_problem(url: str) -> str | None:
    """What is wrong with the user or password of ``url`` (one clause), or None.

    A ``#``, ``/`` or ``?`` in a password must be URL-encoded, or the parser takes it for the start of the
    fragment, path or query, and the rest of the password for the host.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    if "@" in urlparse(url).netloc:
        return None
    found = sorted({c for c in rest.rpartition("@")[0] if c in "#/?"})
    if not found:
        return None
    shown = ", ".join(f'"{c}"' for c in found)
    encoded = ", ".join(f"{c} as %{ord(c):02X}" for c in found)
    return (
        f"has a password with {shown} that is not URL-encoded; write {encoded} "
        '(urllib.parse.quote(password, safe="") does it), or set the password apart, e.g. in RUNNER_REDIS__PASSWORD'
    )
