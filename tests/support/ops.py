"""What the operations-command tests share: a project with two queues and a real worker in a thread."""

from __future__ import annotations

import asyncio
import http.client
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.config import build_workers, load_settings
from runner.engine import Job, RedisSettings, RunnerRedis, Worker, create_pool
from tests.support.cli import clean_env

TASKS = """
import asyncio
import os
from typing import Any


async def send_email(ctx: dict[str, Any], to: str, subject: str = "hi") -> str:
    return f"sent {subject} to {to}"


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def fails(ctx: dict[str, Any], x: int) -> None:
    raise ValueError(f"boom {x}")


async def flaky(ctx: dict[str, Any], marker: str) -> str:
    if os.path.exists(marker):
        raise RuntimeError("marker present")
    return "ok"


async def again(ctx: dict[str, Any]) -> int:
    from runner import Retry

    if ctx["job_try"] < 2:
        raise Retry(defer=0)
    return int(ctx["job_try"])


async def slow(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(60)


async def cleanup(ctx: dict[str, Any]) -> int:
    return 0
"""

TOML = """\
poll_delay = 0.05

[redis]
url = "{url}"
conn_retries = 0

[functions.send_email]
path = "opstasks:send_email"

[functions.add]
path = "opstasks:add"

[functions.fails]
path = "opstasks:fails"

[functions.flaky]
path = "opstasks:flaky"

[functions.slow]
path = "opstasks:slow"

[functions.again]
path = "opstasks:again"

[functions.cleanup]
path = "opstasks:cleanup"

[queues.mail]
functions = ["send_email", "add", "fails", "flaky", "slow", "again"]
allow_abort_jobs = true
health_check_interval = 5

[queues.maintenance]
functions = ["cleanup"]
"""


@pytest.fixture
def project(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """worker.toml with queues ``mail`` and ``maintenance`` on the test server, in the current directory."""
    clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("opstasks", None)
    (tmp_path / "opstasks.py").write_text(TASKS)
    path = tmp_path / "worker.toml"
    path.write_text(TOML.format(url=redis_url))
    return path


class WorkerThread:
    """The file's workers (all queues, or one) running in a thread with its own event loop, until ``stop()``."""

    def __init__(self, config: Path, queue: str | None = None, **flags: Any) -> None:
        loaded = load_settings(config, flags=flags)
        self.workers: list[Worker] = build_workers(loaded.settings, queue, base_dir=loaded.directory)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    async def _main(self) -> None:
        await asyncio.gather(*(run_and_close(w) for w in self.workers))

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            self.loop.close()

    def start(self, url: str) -> WorkerThread:
        self.thread.start()
        # ready once every worker has written its own health record
        wanted = [f"runner:workers:{w.queue_name}:{w.worker_id}" for w in self.workers]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.thread.is_alive():
            if run(_exist(url, wanted)):
                return self
            time.sleep(0.02)
        raise AssertionError(f"the workers did not start ({self.error!r})")

    def stop(self) -> None:
        if self.thread.is_alive():
            for worker in self.workers:
                self.loop.call_soon_threadsafe(worker.request_stop)
            self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> WorkerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _exist(url: str, names: list[str]) -> bool:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        return bool(await pool.exists(*names) == len(names))
    finally:
        await pool.aclose()


async def with_pool(url: str, work: Any) -> Any:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        return await work(pool)
    finally:
        await pool.aclose()


def enqueue(url: str, function: str, *args: Any, **options: Any) -> str:
    async def go(pool: RunnerRedis) -> str:
        job = await pool.enqueue_job(function, *args, **options)
        assert job is not None
        return job.job_id

    result: str = run(with_pool(url, go))
    return result


def wait_status(url: str, job_id: str, queue: str, status: str) -> None:
    async def go(pool: RunnerRedis) -> None:
        job = Job(job_id, pool, _queue_name=queue)
        deadline = time.monotonic() + 20
        while (await job.status()).value != status:
            assert time.monotonic() < deadline, f"job {job_id} never became {status}"
            await asyncio.sleep(0.02)

    run(with_pool(url, go))


async def run_and_close(worker: Worker) -> None:
    """``async_run`` leaves ``close()`` to its caller, as arq's does."""
    try:
        await worker.async_run()
    finally:
        await worker.close()


def burst(config: Path, queue: str | None = None) -> None:
    """Run the file's workers (or one queue's) until their queues are empty."""
    loaded = load_settings(config, flags={"burst": True})

    async def go() -> None:
        await asyncio.gather(
            *(run_and_close(w) for w in build_workers(loaded.settings, queue, base_dir=loaded.directory))
        )

    run(go())


def drop_health(url: str) -> None:
    """Forget every health record, as if the workers had been gone longer than their interval."""

    async def go(pool: RunnerRedis) -> None:
        found = [k async for k in pool.scan_iter(match="runner:workers:*")]
        found += [k async for k in pool.scan_iter(match="*:health-check")]
        if found:
            await pool.delete(*found)

    run(with_pool(url, go))


@pytest.fixture
def worker_thread() -> Iterator[list[WorkerThread]]:
    """Workers started by a test, stopped after it even when it fails."""
    started: list[WorkerThread] = []
    yield started
    for thread in started:
        thread.stop()


def metrics_answer(host: str, port: int) -> bool:
    """Whether ``/metrics`` answers on that address (straight to it: no proxy from the environment)."""
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()
