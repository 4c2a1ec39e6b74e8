"""Fixtures: one real server per test session (or RUNNER_TEST_REDIS_URL), a clean database per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from runner import RedisSettings, RunnerRedis, Worker, create_pool
from tests.support.servers import ValkeyServer


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
async def redis_url(redis_server_url: str) -> str:
    """The server's URL, with its database emptied before the test."""
    client = aioredis.Redis.from_url(redis_server_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return redis_server_url


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[RunnerRedis]:
    """A runner pool on the clean test database."""
    p = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        yield p
    finally:
        await p.aclose()


@pytest.fixture
async def make_worker(redis_url: str) -> AsyncIterator[Callable[..., Worker]]:
    """Build a burst worker on the test server; keyword arguments override the defaults.

    Each worker is closed at teardown (``async_run`` leaves that to its caller, as arq's does).
    """
    made: list[Worker] = []

    def make(functions: Sequence[Any], **kwargs: Any) -> Worker:
        options: dict[str, Any] = {
            "redis_settings": RedisSettings.from_dsn(redis_url),
            "burst": True,
            "handle_signals": False,
            "poll_delay": 0.05,
        }
        options.update(kwargs)
        worker = Worker(functions, **options)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        await worker.close()
