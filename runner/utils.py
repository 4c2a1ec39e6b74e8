"""arq's ``arq.utils`` under runner: time and duration helpers, ``poll``, ``truncate``, ``import_string``."""

from __future__ import annotations

from runner.engine.utils import (
    DEFAULT_CURTAIL,
    args_to_string,
    as_int,
    get_tz,
    import_string,
    logger,
    ms_to_datetime,
    poll,
    timestamp_ms,
    timezone_env_vars,
    to_ms,
    to_seconds,
    to_unix_ms,
    truncate,
)

__all__ = [
    "DEFAULT_CURTAIL",
    "args_to_string",
    "as_int",
    "get_tz",
    "import_string",
    "logger",
    "ms_to_datetime",
    "poll",
    "timestamp_ms",
    "to_ms",
    "to_seconds",
    "to_unix_ms",
    "truncate",
    # arq.utils imports it from arq.constants, so arq code may import it from here too
    "timezone_env_vars",
]
