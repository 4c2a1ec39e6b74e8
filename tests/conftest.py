"""Fixtures: one real server per test session (or RUNNER_TEST_REDIS_URL), a clean database per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from tests.servers import ValkeyServer


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    url = os.environ.get("RUNNER_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = ValkeyServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis_url(redis_server_url: str) -> AsyncIterator[str]:
    """The server's URL, with its database emptied before the test."""
    client = aioredis.Redis.from_url(redis_server_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    yield redis_server_url
