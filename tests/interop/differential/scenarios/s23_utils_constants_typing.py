"""``arq.utils``, ``arq.constants``, ``arq.typing`` and ``arq.logs``: every name, and what it gives."""

from __future__ import annotations

import asyncio
import io
import logging
import logging.config
import sys
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import constants
from arq.logs import default_log_config
from arq.typing import (
    WEEKDAYS,
    OptionType,
    SecondsTimedelta,
    StartupShutdown,
    WeekdayOptionType,
    WorkerCoroutine,
    WorkerSettingsBase,
    WorkerSettingsType,
)
from arq.utils import (
    DEFAULT_CURTAIL,
    args_to_string,
    as_int,
    import_string,
    ms_to_datetime,
    poll,
    timestamp_ms,
    to_ms,
    to_seconds,
    to_unix_ms,
    truncate,
)
from arq.worker import logger as worker_logger


async def scenario(env: Any) -> None:
    env.observe(
        "constants",
        {
            name: getattr(constants, name)
            for name in (
                "default_queue_name",
                "job_key_prefix",
                "in_progress_key_prefix",
                "result_key_prefix",
                "retry_key_prefix",
                "abort_jobs_ss",
                "abort_job_max_age",
                "health_check_key_suffix",
                "keep_cronjob_progress",
                "timezone_env_vars",
                "expires_extra_ms",
            )
        },
    )
    env.observe("as_int", [as_int(1.4), as_int(1.5), as_int(2.5), as_int(-0.6)])
    env.observe("timestamp_ms is now", abs(timestamp_ms() - datetime.now().timestamp() * 1000) < 1000)
    env.observe("to_unix_ms", [to_unix_ms(datetime(2024, 1, 1, tzinfo=UTC)), to_unix_ms(datetime(2024, 1, 1))])
    env.observe("ms_to_datetime", ms_to_datetime(1_700_000_000_123))
    env.observe("to_ms", [to_ms(None), to_ms(1.5), to_ms(timedelta(milliseconds=2500)), to_ms(2)])
    env.observe("to_seconds", [to_seconds(None), to_seconds(3), to_seconds(1.25), to_seconds(timedelta(minutes=1))])
    env.observe("DEFAULT_CURTAIL", DEFAULT_CURTAIL)
    env.observe("truncate", [truncate("x" * 100), truncate("short"), truncate("abcdef", 4)])
    env.observe(
        "args_to_string",
        [args_to_string((1, "a"), {"z": 1, "b": [2]}), args_to_string((), {}), args_to_string(("y" * 100,), {})],
    )
    env.observe("import_string", import_string("os.path.join") is __import__("os").path.join)
    steps = []
    async for elapsed in poll(0.05):
        steps.append(elapsed)
        if len(steps) == 3:
            break
    env.observe("poll paces its steps", 0.1 <= steps[-1] < 2)
    env.observe_time("poll steps", steps[-1], 1.0)  # loose: the bound above proves the pacing
    env.observe("poll starts at 0", steps[0] < 0.01)
    env.observe("WEEKDAYS", WEEKDAYS)
    env.observe("OptionType", [repr(a) for a in typing.get_args(OptionType)])
    env.observe("SecondsTimedelta", [repr(a) for a in typing.get_args(SecondsTimedelta)])
    env.observe("WeekdayOptionType", len(typing.get_args(WeekdayOptionType)) > 1)
    env.observe("WorkerSettingsType", [getattr(a, "__name__", repr(a)) for a in typing.get_args(WorkerSettingsType)])
    env.observe("protocols", [p.__name__ for p in (WorkerCoroutine, StartupShutdown, WorkerSettingsBase)])

    verbose, quiet = default_log_config(True), default_log_config(False)
    env.observe("log config", [sorted(quiet), quiet["version"], quiet["disable_existing_loggers"]])
    env.observe(
        "log config levels",
        [[h["level"] for h in verbose["handlers"].values()], [h["level"] for h in quiet["handlers"].values()]],
    )
    stream = io.StringIO()
    saved = sys.stderr
    sys.stderr = stream  # the config's StreamHandler writes to stderr
    try:
        logging.config.dictConfig(quiet)
    finally:
        sys.stderr = saved
    worker_logger.info("hello from the worker's logger")
    worker_logger.debug("hidden")
    env.observe("a worker line with it", stream.getvalue().split(": ", 1)[-1])
    for name in quiet["loggers"]:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    await asyncio.sleep(0)
