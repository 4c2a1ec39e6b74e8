"""A redis-py connection a test leaves open fails that test, at its teardown, every time.

With ``filterwarnings = error``, an asyncio connection of redis-py that nobody closed warns (``ResourceWarning:
unclosed Connection``, then its transport and its socket) when the garbage collector reaches it: during whatever
test runs at that moment, which then fails for a reason that is not its own, on a GC timing. So each connection
redis-py makes is noted with the test that made it and the lines of tests/ and runner/ that asked for it; when
the test ends (its fixtures closed), one of its connections still open is an error of that test that names those
lines, and the connection is kept referenced for the rest of the session so that its warning never lands in
another test.
"""

from __future__ import annotations

import sys
import weakref
from pathlib import Path
from typing import Any

from redis.asyncio.connection import AbstractConnection

_ROOT = str(Path(__file__).resolve().parents[2])
_OURS = (f"{_ROOT}/tests/", f"{_ROOT}/runner/")
_made: weakref.WeakKeyDictionary[AbstractConnection, tuple[str, list[str]]] = weakref.WeakKeyDictionary()
_kept: list[AbstractConnection] = []  # leaked ones, never collected while the session runs
current_test = ""


def _where() -> list[str]:
    """Where the connection was asked for: the innermost frames in tests/ and runner/ (no source read: cheap)."""
    lines = []
    frame = sys._getframe(2)
    while frame is not None and len(lines) < 6:
        name = frame.f_code.co_filename
        if name.startswith(_OURS) and not name.endswith("tests/support/leaks.py"):
            lines.append(f"{name[len(_ROOT) + 1 :]}:{frame.f_lineno} in {frame.f_code.co_name}")
        frame = frame.f_back
    return lines


def install() -> None:
    """Note every asyncio connection redis-py makes from now on (once per process)."""
    original: Any = AbstractConnection.__init__
    if getattr(original, "tracked_by_tests", False):
        return

    def __init__(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _made[self] = (current_test, _where())

    __init__.tracked_by_tests = True  # type: ignore[attr-defined]
    AbstractConnection.__init__ = __init__  # type: ignore[method-assign]


def left_open(test: str) -> list[str]:
    """The connections ``test`` made that are still open, described; they are kept, never collected."""
    found = []
    for connection, (made_by, where) in list(_made.items()):
        if made_by == test and connection.is_connected:
            _kept.append(connection)
            del _made[connection]
            found.append(f"{connection!r}, made at\n    " + "\n    ".join(where or ["(outside tests/ and runner/)"]))
    return found
