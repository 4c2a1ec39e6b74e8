"""Logging for commands: compact text lines or JSON lines on stderr, for runner's own loggers and job code alike.

``setup_logging`` puts one handler on the root logger, so a task's ``logging.getLogger("tasks").info(...)`` comes out
in the same format as the worker's own lines, at the level the user chose (``--log-level``, ``log_level`` in
worker.toml, ``-v`` for debug), with the job it ran in attached (``job_id``, ``function``, ``job_try``, ``queue``:
fields in JSON, a ``[id:function]`` tag in text; see :mod:`runner.engine.job_context`). The formats themselves live
in :mod:`runner.engine.log_format`, where a job subprocess finds them too.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from runner.engine.job_context import JobContextFilter
from runner.engine.log_format import JsonFormatter, formatter_for

_OURS = "_runner_cli_handler"  # marks the handler setup_logging installed, so a second call replaces it


def level_number(name: str) -> int:
    return int(logging.getLevelNamesMapping()[name.upper()])


def setup_logging(verbose: bool, log_format: str, level: str | None = None) -> None:
    """Log everything at ``level`` (default info; ``verbose`` without a level: debug) to stderr, in one format.

    Handlers of others (pytest's, an embedding program's) are left alone; only a handler this function put
    there before is replaced.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for("json" if log_format == "json" else "text"))
    handler.addFilter(JobContextFilter())
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    runner = logging.getLogger("runner")
    for old in [h for h in runner.handlers if getattr(h, _OURS, False)]:
        runner.removeHandler(old)
    runner.propagate = True
    set_level(level or ("debug" if verbose else "info"))


def set_level(level: str) -> None:
    """The level of every logger that does not set its own (job code's among them), runner's included."""
    number = level_number(level)
    logging.getLogger().setLevel(number)
    logging.getLogger("runner").setLevel(number)


def json_line(logger: str, message: str, **fields: Any) -> str:
    """A line in the JSON log format that no logger wrote (``runner start``'s banner under ``--log-format json``)."""
    record = logging.makeLogRecord({"name": logger, "msg": message, "levelname": "INFO", "levelno": logging.INFO})
    record.__dict__.update(fields)
    return JsonFormatter().format(record)
