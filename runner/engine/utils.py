"""Small helpers shared by the engine modules: time, durations, import strings, Redis URLs."""

from __future__ import annotations

import importlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

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
