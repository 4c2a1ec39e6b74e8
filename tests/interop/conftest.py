"""Interop fixtures: the real arq (from PyPI, in ``.arq-venv/``) as a client process and as a worker process."""

from __future__ import annotations

import asyncio
import io
import pickle
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.interop.arq_env import ArqClient, ArqEnvError, end_process, ensure_arq_venv, start_arq_worker
from tests.interop.runner_jobs import RELEASED


@pytest.fixture(scope="session")
def arq_python() -> Path:
    """The arq venv's python. A venv that cannot be built fails every interop test with the reason, never skips."""
    try:
        return ensure_arq_venv()
    except ArqEnvError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def arq_client(
    arq_python: Path, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArqClient]:
    """One real arq client process for the session; each test's ``redis_url`` fixture empties its database."""
    client = ArqClient(arq_python, redis_server_url, tmp_path_factory.mktemp("arq-client") / "stderr.log")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _close_gates() -> Iterator[None]:
    RELEASED.clear()
    yield
    RELEASED.clear()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """Plain redis-py on the test database, to look at keys as they are."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


ArqWorkerRunner = Callable[..., Awaitable[str]]


@pytest.fixture
def arq_worker(arq_python: Path, redis_url: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real ``arq --burst`` workers on the test database; any still running at teardown is ended by pid."""
    started: list[subprocess.Popen[bytes]] = []

    def start(queue_name: str = "arq:queue") -> subprocess.Popen[bytes]:
        proc = start_arq_worker(arq_python, redis_url, tmp_path / f"arq-worker-{len(started)}.log", queue_name)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        end_process(proc)


@pytest.fixture
def run_arq_worker(arq_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path) -> ArqWorkerRunner:
    """Run one burst arq worker to the end and return its log; it must exit 0."""

    async def run(within_s: float = 30, queue_name: str = "arq:queue") -> str:
        proc = arq_worker(queue_name)
        return await wait_arq_worker(proc, tmp_path, within_s)

    return run


async def wait_arq_worker(proc: subprocess.Popen[bytes], tmp_path: Path, within_s: float = 30) -> str:
    """Wait for a burst arq worker to exit by itself; return its log."""
    try:
        code = await asyncio.to_thread(proc.wait, within_s)
    except subprocess.TimeoutExpired:
        end_process(proc)
        code = None
    logs = read_logs(tmp_path)
    assert code == 0, f"arq worker exited with {code}:\n{logs}"
    return logs


def read_logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("arq-worker-*.log")))


async def wait_until(check: Callable[[], Awaitable[Any]], what: str, within_s: float = 15) -> Any:
    """Poll ``check`` until it returns something truthy; bounded, so a broken engine fails instead of hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


class Foreign:
    """Stands in for a class the reading side cannot import (runner's errors on the arq side, arq's here)."""

    qualname = ""

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class TolerantUnpickler(pickle.Unpickler):
    """Reads a payload whose classes live in a package this process lacks, so a test can still check its fields."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (Foreign,), {"qualname": f"{module}.{name}"})


def loads_tolerant(raw: bytes) -> Any:
    return TolerantUnpickler(io.BytesIO(raw)).load()
