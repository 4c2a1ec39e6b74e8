"""What every command shares: exit codes, ``Error: …`` lines, loading a worker.toml, and logging setup.

Library code raises; this module turns a ``RunnerError`` into one line per problem on stderr and an exit code.
A user's mistake never prints a traceback; ``-v`` adds one for unexpected errors.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from runner.config import LoadedConfig, ProblemList, load_settings
from runner.errors import RunnerError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_START = 3

config_argument = click.argument("config_file", metavar="WORKER_TOML", type=click.Path(dir_okay=True, path_type=Path))


def error(message: str) -> None:
    """Print ``Error: message`` to stderr, one line per line of ``message``."""
    for line in message.splitlines() or [""]:
        click.echo(f"Error: {line}", err=True)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``Error: message`` and exit with ``code``."""
    error(message)
    raise SystemExit(code)


@contextmanager
def handled(code: int = EXIT_FAILURE, verbose: bool = False) -> Iterator[None]:
    """Turn errors raised inside into ``Error:`` lines and exit ``code`` (a traceback only with ``verbose``)."""
    try:
        yield
    except RunnerError as exc:
        if verbose:
            traceback.print_exc()
        fail(str(exc), code)
    except (SystemExit, KeyboardInterrupt, click.exceptions.Exit, click.ClickException):
        raise
    except Exception as exc:
        if verbose:
            traceback.print_exc()
            fail(f"unexpected {type(exc).__name__}: {exc}", code)
        fail(f"unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)", code)


def load(config_file: Path, flags: dict[str, Any] | None = None) -> LoadedConfig:
    """Load and schema-check ``config_file``; raises ``ProblemList``."""
    return load_settings(config_file, flags=flags, display_name=str(config_file))


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


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


def setup_logging(verbose: bool, log_format: str) -> None:
    """Log ``runner.*`` to stderr: compact text lines (``HH:MM:SS: message``) or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s: %(message)s", datefmt="%H:%M:%S"))
    logger = logging.getLogger("runner")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_START",
    "EXIT_USAGE",
    "JsonFormatter",
    "ProblemList",
    "config_argument",
    "error",
    "fail",
    "handled",
    "load",
    "plural",
    "setup_logging",
]
