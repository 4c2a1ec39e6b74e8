"""The event loop a worker runs on: asyncio's own, or uvloop's when it is installed.

``event_loop`` names it: ``"auto"`` (the default) takes uvloop when it can be imported and asyncio's loop
otherwise, ``"asyncio"`` always takes asyncio's, and ``"uvloop"`` insists on uvloop (the ``uvloop`` extra:
``pip install "runner-jobs[uvloop]"``). uvloop is a drop-in loop built on libuv, so the worker and job code see the
same asyncio API on either.

The loop comes from ``asyncio.Runner(loop_factory=...)``, not from a global event loop policy: a process that
runs a worker keeps its policy for every other loop it makes (a test's, an embedding application's), and
``"asyncio"`` means asyncio's loop even where some library has installed uvloop's policy.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, cast

from runner.errors import InvalidArgument

EventLoopName = Literal["auto", "asyncio", "uvloop"]
EVENT_LOOPS: tuple[EventLoopName, ...] = ("auto", "asyncio", "uvloop")
UVLOOP_INSTALL = 'pip install "runner-jobs[uvloop]"'

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")


def uvloop_factory() -> LoopFactory | None:
    """uvloop's loop factory, or None where uvloop cannot be imported (not installed, or not on this platform)."""
    try:
        # imported by name: it is an optional extra, absent from many environments that type-check runner
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    return cast(LoopFactory, uvloop.new_event_loop)


def check_event_loop(name: str) -> EventLoopName:
    """``name``, when it names a loop this process can run.

    Raises:
        InvalidArgument: an unknown name, or ``"uvloop"`` where uvloop is not installed.
    """
    if name not in EVENT_LOOPS:
        choices = ", ".join(f'"{choice}"' for choice in EVENT_LOOPS)
        raise InvalidArgument(f"event_loop must be one of {choices} (got {name!r})")
    if name == "uvloop" and uvloop_factory() is None:
        raise InvalidArgument(
            f'event_loop "uvloop" needs uvloop, which is not installed: {UVLOOP_INSTALL}, or use "auto" '
            "to take it only where it is installed"
        )
    return name


def loop_factory(name: str = "auto") -> LoopFactory:
    """What makes a loop of the kind ``name`` names.

    Raises:
        InvalidArgument: as ``check_event_loop``.
    """
    uvloop = None if check_event_loop(name) == "asyncio" else uvloop_factory()
    return uvloop or _asyncio_loop


def _asyncio_loop() -> asyncio.AbstractEventLoop:
    """asyncio's own loop for this platform, whatever event loop policy the process has set."""
    if sys.platform == "win32":
        return asyncio.ProactorEventLoop()
    return asyncio.SelectorEventLoop()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """The kind of ``loop`` as the worker's startup line names it: "asyncio", "uvloop" or the package of another."""
    return type(loop).__module__.partition(".")[0]


def run(main: Coroutine[Any, Any, T], *, event_loop: str = "auto") -> T:
    """``asyncio.run(main)`` on a new loop of the kind ``event_loop`` names: run it to its end, then close the loop.

    Raises:
        InvalidArgument: as ``check_event_loop``; ``main`` is closed without running.
    """
    try:
        factory = loop_factory(event_loop)
    except InvalidArgument:
        main.close()  # not left to warn that it was never awaited
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
