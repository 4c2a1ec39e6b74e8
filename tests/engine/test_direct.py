"""Hot-path scripts called straight on a pool connection (runner/engine/direct.py)."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from runner.engine.client import RunnerRedis
from runner.engine.direct import DirectScript

SOURCE = "redis.call('INCR', KEYS[1]); return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}"


async def test_a_direct_script_gives_the_raw_reply_and_loads_itself_again_after_a_flush(pool: RunnerRedis) -> None:
    script = DirectScript(pool, SOURCE)
    assert await script(keys=["counter"], args=["a", 41]) == [b"counter", b"a", 42]
    await pool.script_flush()  # as after a server restart: the next call is answered NOSCRIPT
    assert await script(keys=["counter"], args=["b", 1]) == [b"counter", b"b", 2]
    assert await pool.get("counter") == b"2"  # each call ran once


async def test_a_dropped_connection_is_ridden_over(
    pool: RunnerRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    script = DirectScript(pool, SOURCE)
    await script(keys=["counter"], args=["a", 1])
    other = aioredis.Redis.from_url(redis_url)
    try:
        killed = await other.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    finally:
        await other.aclose()
    assert killed >= 1  # the pool's connection among them
    with caplog.at_level(logging.WARNING):
        assert await script(keys=["counter"], args=["a", 1]) == [b"counter", b"a", 2]
    assert any("connection dropped" in r.getMessage() for r in caplog.records)


async def test_an_error_reply_is_raised(pool: RunnerRedis) -> None:
    script = DirectScript(pool, "return redis.error_reply('BAD thing')")
    with pytest.raises(ResponseError, match="BAD thing"):
        await script(keys=[], args=[])
    assert await pool.ping()  # the connection went back to the pool in working order
