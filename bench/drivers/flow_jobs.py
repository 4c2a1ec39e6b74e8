"""Jobs of bench/flow_control.py: each notes what the figures need in Redis, then sleeps or returns."""

from __future__ import annotations

import asyncio
import time
from typing import Any

_COUNT_IN = """
local running = redis.call('INCR', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or 0) < running then redis.call('SET', KEYS[2], running) end
redis.call('RPUSH', KEYS[3], ARGV[1])
"""
_COUNT_OUT = """
redis.call('DECR', KEYS[1])
redis.call('RPUSH', KEYS[2], ARGV[1])
"""


async def capped(ctx: dict[str, Any], pause: float = 0.05) -> None:
    """Counts itself in while it runs, and notes the most seen at once: one atomic round trip each way, so the
    bookkeeping adds little to the ``pause`` (the start and end times it records show what the job took)."""
    r = ctx["redis"]
    await r.eval(_COUNT_IN, 3, "bench:running", "bench:most", "bench:starts", repr(time.time()))
    await asyncio.sleep(pause)
    await r.eval(_COUNT_OUT, 2, "bench:running", "bench:ends", repr(time.time()))


async def paced(ctx: dict[str, Any]) -> None:
    await ctx["redis"].rpush("bench:starts", repr(time.time()))


async def tagged(ctx: dict[str, Any], tag: str, pause: float = 0.0, at_end: bool = False) -> None:
    """Notes its tag and the time in order, at its start (or, ``at_end``, once it has slept)."""
    if not at_end:
        await ctx["redis"].rpush("bench:order", f"{tag} {time.time()!r}")
    if pause:
        await asyncio.sleep(pause)
    if at_end:
        await ctx["redis"].rpush("bench:order", f"{tag} {time.time()!r}")


async def noop(ctx: dict[str, Any]) -> None:
    return None
