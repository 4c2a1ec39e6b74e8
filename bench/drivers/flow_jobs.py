"""Jobs of bench/flow_control.py: each notes what the figures need in Redis, then sleeps or returns."""

from __future__ import annotations

import asyncio
import time
from typing import Any


async def capped(ctx: dict[str, Any], pause: float = 0.05) -> None:
    """Counts itself in while it runs, and notes the most seen at once (one atomic step each way)."""
    r = ctx["redis"]
    running = await r.incr("bench:running")
    await r.eval(
        "if tonumber(redis.call('GET', KEYS[1]) or 0) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end",
        1,
        "bench:most",
        running,
    )
    await r.rpush("bench:starts", repr(time.time()))
    await asyncio.sleep(pause)
    await r.decr("bench:running")
    await r.rpush("bench:ends", repr(time.time()))


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
