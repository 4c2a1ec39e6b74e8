"""Fixtures: one real server per test session (or RUNNER_TEST_REDIS_URL), a clean database per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from runner import RedisSettings, RunnerRedis, Worker, create_pool
from tests.support import leaks
from tests.support.cluster import ValkeyCluster
from tests.support.servers import ValkeyServer

leaks.install()


@pytest.fixture(autouse=True)
def _redis_connections_closed(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that leaves a redis-py connection open fails, instead of a later test on a GC timing (leaks.py).

    Autouse, so it is set up before and torn down after the test's other fixtures: what they close is closed.
    """
    leaks.current_test = request.node.nodeid
    yield
    leaks.current_test = ""
    left = leaks.left_open(request.node.nodeid)
    if left:
        pytest.fail(
            f"{len(left)} redis connection(s) left open (close the pool, or the Worker whose async_run() ended): "
            + "; ".join(left[:3]),
            pytrace=False,
        )


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


@pytest.fixture(scope="session")
def cluster_server() -> Iterator[ValkeyCluster]:
    """A 3-master Valkey cluster, started once per session (per xdist worker) when a test asks for it."""
    cluster = ValkeyCluster(masters=3).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # a test marked `layouts` runs on the default layout and again on the cluster layout, on a Redis Cluster
    if metafunc.definition.get_closest_marker("layouts") is not None:
        metafunc.parametrize("layout", ["arq", "cluster"], indirect=True)


@pytest.fixture
def layout(request: pytest.FixtureRequest) -> str:
    """The key layout the test runs on: "arq" on one server, or "cluster" on the cluster (marker ``layouts``)."""
    return str(getattr(request, "param", "arq"))


@pytest.fixture
async def redis_url(request: pytest.FixtureRequest, layout: str) -> str:
    """The server's URL (on the cluster: a node's), with its data emptied before the test."""
    if layout == "cluster":
        cluster: ValkeyCluster = request.getfixturevalue("cluster_server")
        cluster.flush()
        return cluster.url
    redis_server_url: str = request.getfixturevalue("redis_server_url")
    client = aioredis.Redis.from_url(redis_server_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return redis_server_url


@pytest.fixture
def redis_settings(redis_url: str, layout: str) -> RedisSettings:
    """Settings for the test's server (``cluster=True`` on the cluster layout)."""
    return RedisSettings.from_dsn(redis_url, cluster=layout == "cluster")


@pytest.fixture
async def pool(redis_settings: RedisSettings) -> AsyncIterator[RunnerRedis]:
    """A runner pool on the clean test database."""
    p = await create_pool(redis_settings)
    try:
        yield p
    finally:
        await p.aclose()


@pytest.fixture
async def make_worker(redis_settings: RedisSettings) -> AsyncIterator[Callable[..., Worker]]:
    """Build a burst worker on the test server; keyword arguments override the defaults.

    Each worker is closed at teardown (``async_run`` leaves that to its caller, as arq's does).
    """
    made: list[Worker] = []

    def make(functions: Sequence[Any], **kwargs: Any) -> Worker:
        options: dict[str, Any] = {
            "redis_settings": redis_settings,
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
