"""The jobs of bench/executors.py, imported by path by its workers and their job subprocesses."""

from __future__ import annotations

import asyncio
import time
from typing import Any


async def io_job(ctx: dict[str, Any], sent_at: float) -> float:
    """An async I/O job (a 10 ms sleep); returns how long after it was enqueued it started, in ms."""
    picked = (time.time() - sent_at) * 1000
    await asyncio.sleep(0.01)
    return picked


def _spin(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


async def cpu_inline(ctx: dict[str, Any], seconds: float) -> int:
    """CPU-bound pure Python written as async def, as 0.1 had to run it: it holds the event loop throughout."""
    return _spin(seconds)


def cpu(ctx: dict[str, Any], seconds: float) -> int:
    """The same CPU-bound work as a plain def, for the process executor."""
    return _spin(seconds)


def sync_sleep(ctx: dict[str, Any]) -> None:
    time.sleep(0.01)


async def async_sleep(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(0.01)


def noop(ctx: dict[str, Any]) -> None:
    return None


async def async_noop(ctx: dict[str, Any]) -> None:
    return None
