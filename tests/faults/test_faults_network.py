"""Network faults between a client and a healthy server: replies lost in flight, stalled links, killed
connections. A StallProxy (tests/support/proxy.py) sits in between and misbehaves on the test's command."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import redis.asyncio as aioredis

from runner.engine import JobSpec, RedisSettings, create_pool
from tests.support.proxy import StallProxy


@pytest.fixture
def proxy(redis_url: str) -> Iterator[StallProxy]:
    """A proxy in front of the test server (its database already emptied)."""
    p = StallProxy(urlparse(redis_url).port or 6379).start()
    try:
        yield p
    finally:
        p.stop()


async def test_an_enqueue_whose_reply_was_lost_reports_the_job_it_wrote(proxy: StallProxy, redis_url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(proxy.url, socket_timeout=0.5))
    direct = aioredis.Redis.from_url(redis_url)
    try:
        assert await pool.enqueue_job("anything") is not None  # the script is loaded: a lost reply may be a write
        # the script reaches the server and writes the job; its reply is held until the client gives up on it, and
        # redis-py sends the same call again on a fresh connection
        proxy.stall(requests=False)
        job = await pool.enqueue_job("anything", _job_id="lost-reply")
        assert job is not None and job.job_id == "lost-reply"
        assert proxy.connections_made >= 2  # the reply really was lost and the call really was sent again
        assert await direct.zcard("arq:queue") == 2

        proxy.resume()
        proxy.stall(requests=False)
        jobs = await pool.enqueue_many([JobSpec("anything") for _ in range(3)] + [JobSpec("x", job_id="lost-reply")])
        assert [j is not None for j in jobs] == [True, True, True, False]  # the one real duplicate is refused
        assert await direct.zcard("arq:queue") == 5
        proxy.resume()

        # a later call of its own with a taken id is a real duplicate: refused
        assert await pool.enqueue_job("anything", _job_id="lost-reply") is None
    finally:
        await direct.aclose()
        await pool.aclose()
