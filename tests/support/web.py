"""What the dashboard tests share: a project with jobs in every state, and the dashboard served on a free port."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from runner.web import create_app
from runner.web.options import DashboardOptions, from_config
from tests.support.ops import TOML, WorkerThread, burst, enqueue, run, wait_status, with_pool
from tests.support.servers import free_port

XSS_ARG = "<script>window.__xss = 1</script>"
XSS_SUBJECT = '"><img src=x onerror="window.__xss=2">'
LONG_ARG = "x" * 5000

CRON = """
[cron.nightly]
function = "cleanup"
schedule = "30 2 * * *"
tz = "Europe/London"
queue = "maintenance"
"""


class DashboardServer:
    """A dashboard app served by uvicorn in a thread on 127.0.0.1, until ``stop()``."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DashboardServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the dashboard did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        assert not self.thread.is_alive()


@dataclass
class Seeded:
    """The ids of jobs put in every state by ``seed``."""

    complete: str
    failed: list[str]
    queued: list[str]
    xss: str
    long: str
    deferred: str
    running: str
    garbage: str = "undecodable-payload"
    worker: WorkerThread | None = None
    extra: dict[str, str] = field(default_factory=dict)


def write_project(path: Path, url: str, extra: str = "") -> Path:
    config = path / "worker.toml"
    config.write_text(TOML.format(url=url) + CRON + extra)
    return config


def seed(config: Path, url: str) -> Seeded:
    """Jobs in every state on queue ``mail``, one of them run by a real worker that stays running."""
    complete = enqueue(url, "send_email", "a@b.c", _queue_name="mail")
    failed = [enqueue(url, "fails", n, _queue_name="mail") for n in (1, 2)]
    burst(config, "mail")
    running = enqueue(url, "slow", _queue_name="mail")
    worker = WorkerThread(config, "mail", max_jobs=1).start(url)
    wait_status(url, running, "mail", "in_progress")
    # the worker's one slot is taken: everything below stays where it is put
    queued = [enqueue(url, "add", n, n, _queue_name="mail") for n in range(3)]
    xss = enqueue(url, "send_email", XSS_ARG, subject=XSS_SUBJECT, _queue_name="mail")
    long = enqueue(url, "send_email", LONG_ARG, _queue_name="mail")
    deferred = enqueue(url, "add", 5, 5, _queue_name="mail", _defer_by=3600)

    async def garbage(pool: Any) -> None:
        await pool.zadd("mail", {"undecodable-payload": 1})
        await pool.set(pool.key_layout.job("mail", "undecodable-payload"), b"\x80\x04not a pickle at all")

    run(with_pool(url, garbage))
    return Seeded(complete, failed, queued, xss, long, deferred, running, worker=worker)


def options_for(config: Path, **changes: Any) -> DashboardOptions:
    options, _ = from_config(config)
    for name, value in changes.items():
        setattr(options, name, value)
    return options


@pytest.fixture
def serve() -> Iterator[Any]:
    """Serve ``DashboardOptions`` (or an app); every server is stopped after the test."""
    started: list[DashboardServer] = []

    def start(options_or_app: Any) -> DashboardServer:
        app = create_app(options_or_app) if isinstance(options_or_app, DashboardOptions) else options_or_app
        server = DashboardServer(app).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def client(server: DashboardServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=20, **kwargs)


def wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def loop_run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
