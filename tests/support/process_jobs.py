"""Job functions and hooks that job subprocesses import by path (``tests.support.process_jobs:NAME``)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import time
from pathlib import Path
from typing import Any

from runner import Retry
from runner.engine.procinfo import rss_bytes

_kept: list[bytes] = []


def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def async_add(ctx: dict[str, Any], a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


def whoami(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"pid": os.getpid(), "ctx": {k: v for k, v in ctx.items() if isinstance(v, str | int | float)}}


def crunch(ctx: dict[str, Any], seconds: float) -> int:
    """Pure-Python work that never yields: only killing the process stops it early."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def segfault(ctx: dict[str, Any]) -> None:
    ctypes.string_at(0)


def sigkill_self(ctx: dict[str, Any]) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def raises(ctx: dict[str, Any]) -> None:
    raise ValueError("broken on purpose")


def retries(ctx: dict[str, Any]) -> None:
    raise Retry(defer=7)


class TwoArgError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")  # pickles its message only: it cannot be rebuilt
        self.code = code


def raises_unrebuildable(ctx: dict[str, Any]) -> None:
    raise TwoArgError(7, "nope")


def returns_lambda(ctx: dict[str, Any]) -> Any:
    return lambda: 1


def prints(ctx: dict[str, Any]) -> str:
    print("a line a job prints" * 100)
    return "printed"


def grow(ctx: dict[str, Any], megabytes: int) -> int:
    _kept.append(os.urandom(megabytes * 1024 * 1024))
    return rss_bytes()


def exits(ctx: dict[str, Any]) -> None:
    raise SystemExit(4)


def startup(ctx: dict[str, Any]) -> None:
    ctx["started_in"] = os.getpid()
    ctx["greeting"] = "hello"


async def async_startup(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(0)
    ctx["greeting"] = "hello from async"


def failing_startup(ctx: dict[str, Any]) -> None:
    raise RuntimeError("database is down")


def shutdown(ctx: dict[str, Any]) -> None:
    marker = os.environ.get("PROCESS_JOBS_SHUTDOWN_DIR")
    if marker:
        (Path(marker) / str(os.getpid())).write_text("bye")


def sync_sleep(ctx: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A sync I/O job: it holds its thread, never the event loop."""
    import threading

    time.sleep(seconds)
    return {"thread": threading.current_thread().name, "job_id": ctx["job_id"], "try": ctx["job_try"]}


def sync_retries(ctx: dict[str, Any]) -> int:
    if ctx["job_try"] < 2:
        raise Retry(defer=0.05)
    return int(ctx["job_try"])


def sync_cooperative(ctx: dict[str, Any], seconds: float) -> str:
    """Stops early once the worker gives it up: ``ctx["cancel_event"]`` is set then."""
    return "given up" if ctx["cancel_event"].wait(seconds) else "ran out"


def _record_run(ctx: dict[str, Any], url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.rpush("test:runs", f"{ctx['job_id']} {ctx['job_try']} {os.getpid()} {time.time()}")
    finally:
        client.close()


def sync_sleep_recorded(ctx: dict[str, Any], url: str, seconds: float) -> str:
    """Records each run in Redis, then holds its thread; only the first try sleeps."""
    _record_run(ctx, url)
    time.sleep(seconds if ctx["job_try"] == 1 else 0)
    return "slept"


async def loop_blocker_recorded(ctx: dict[str, Any], url: str, seconds: float) -> str:
    """Records each run, then blocks the whole event loop (the mistake the lease thread survives)."""
    _record_run(ctx, url)
    time.sleep(seconds)
    return "blocked"


def grow_recorded(ctx: dict[str, Any], url: str, megabytes: int) -> int:
    """Records the run, then keeps ``megabytes`` of memory for the life of its process."""
    _record_run(ctx, url)
    return grow(ctx, megabytes)
