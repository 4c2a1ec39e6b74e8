"""Fixtures of the dashboard tests: a worker.toml with two queues and a cron job, jobs in every state, servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ops import project  # noqa: F401 - a fixture
from tests.support.web import Seeded, seed, serve, write_project  # noqa: F401 - serve is a fixture


@pytest.fixture
def config(project: Path, redis_url: str) -> Path:  # noqa: F811
    """The project's worker.toml with a cron job added."""
    return write_project(project.parent, redis_url)


@pytest.fixture
def seeded(config: Path, redis_url: str) -> Iterator[Seeded]:
    """Jobs in every state on queue ``mail``; the worker that runs one of them is stopped afterwards."""
    jobs = seed(config, redis_url)
    try:
        yield jobs
    finally:
        assert jobs.worker is not None
        jobs.worker.stop()
