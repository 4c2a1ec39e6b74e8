"""Small helpers shared by the engine modules: time, durations, import strings."""

from __future__ import annotations

import importlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from runner.errors import ImportStringError

SecondsTimedelta = int | float | timedelta


def timestamp_ms() -> int:
    """Now as integer unix milliseconds, the unit of every score and time on the wire."""
    return int(round(time.time() * 1000))


def to_seconds(value: SecondsTimedelta | None) -> float | None:
    """A duration given as seconds or a timedelta, as float seconds (None stays None)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def to_ms(value: SecondsTimedelta | None) -> int | None:
    seconds = to_seconds(value)
    return None if seconds is None else int(round(seconds * 1000))


def to_unix_ms(dt: datetime) -> int:
    """A datetime as unix ms; a naive datetime is read as local time, as arq does."""
    return int(round(dt.timestamp() * 1000))


def ms_to_datetime(unix_ms: int) -> datetime:
    return datetime.fromtimestamp(unix_ms / 1000, tz=UTC)


def import_string(path: str) -> Any:
    """Resolve ``"package.module:attr"`` (``attr`` may be dotted) to the object it names.

    Raises:
        ImportStringError: the path is malformed, the module cannot be imported, or it lacks the attribute.
    """
    module_name, sep, attr_path = path.partition(":")
    if not sep or not module_name or not attr_path:
        raise ImportStringError(f'Import string "{path}" must be in format "<module>:<attribute>".')
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


def truncate(text: str, length: int = 80) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def args_to_string(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in sorted(kwargs.items())]
    return truncate(", ".join(parts))
