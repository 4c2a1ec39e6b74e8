"""Exit codes and ``Error: …`` lines: library code raises; a command turns a ``RunnerError`` into one line per
problem on stderr and an exit code. A user's mistake never prints a traceback; ``-v`` adds one for unexpected
errors.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from runner.errors import RunnerError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_START = 3
EXIT_BROKEN = 4  # only between a supervised child and its supervisor: the worker.toml or task code is broken


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
