"""runner's two log formats, compact text lines and JSON lines, for the worker and its job subprocesses alike.

``runner start`` puts one of these on its handler (runner/cli/logs.py); a job subprocess of the process executor
uses the one its worker's root logger uses (``format_in_use``), so what a job logs there comes out as it would in
the worker, with its job attached (:mod:`runner.engine.job_context`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra=`` fields."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS: message`` for runner's lines (they name their job already); other loggers' lines say who logged
    them and, inside a job, which job: ``HH:MM:SS: [3f2a…:send_email] tasks: sent``, with the level from WARNING up."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s: %(message)s", datefmt="%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        if record.name == "runner" or record.name.startswith("runner."):
            return super().formatMessage(record)
        job = f"[{record.job_id}:{getattr(record, 'function', '?')}] " if hasattr(record, "job_id") else ""
        level = f" {record.levelname}" if record.levelno >= logging.WARNING else ""
        return f"{record.asctime}: {job}{record.name}{level}: {record.message}"


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def format_in_use() -> LogFormat | None:
    """The format of the first root handler that writes one of runner's formats, or None (logging set up by others)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return "json"
        if isinstance(handler.formatter, TextFormatter):
            return "text"
    return None
