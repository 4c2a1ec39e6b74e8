"""``runner start app.worker.WorkerSettings``: an arq settings class, run as arq's ``arq`` command runs it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.engine import Job, RedisSettings, create_pool
from tests.support.cli import clean_env, invoke
from tests.support.ops import metrics_answer
from tests.support.servers import free_port

SETTINGS = """
from typing import Any

from runner.connections import RedisSettings
from runner.worker import func

SHUTDOWNS = []


async def send_email(ctx: dict[str, Any], to: str) -> str:
    return f"sent to {to} by {ctx['app']}"


async def startup(ctx: dict[str, Any]) -> None:
    ctx["app"] = "arqapp"


class WorkerSettings:
    functions = [func(send_email, timeout=5)]
    redis_settings = RedisSettings.from_dsn("{url}")
    on_startup = startup
    queue_name = "{queue}"
    max_jobs = 3
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    for name in [m for m in sys.modules if m.startswith("arqapp")]:
        del sys.modules[name]
    monkeypatch.setattr(sys, "path", list(sys.path))  # the command puts the working directory on it


def write_app(tmp_path: Path, url: str, queue: str = "arq:queue", attributes: str = "") -> None:
    """The arqapp package; ``attributes`` are more lines of the settings class (it ends the module)."""
    package = tmp_path / "arqapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "worker.py").write_text(SETTINGS.replace("{url}", url).replace("{queue}", queue) + attributes)


async def enqueue(url: str, queue: str) -> str:
    pool = await create_pool(RedisSettings.from_dsn(url), default_queue_name=queue)
    try:
        job = await pool.enqueue_job("send_email", "a@b.c")
        assert job is not None
        return job.job_id
    finally:
        await pool.aclose()


async def result_of(url: str, job_id: str, queue: str) -> object:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        return await Job(job_id, pool, _queue_name=queue).result(timeout=5)
    finally:
        await pool.aclose()


@pytest.mark.parametrize("target", ["arqapp.worker.WorkerSettings", "arqapp.worker:WorkerSettings"])
def test_burst_runs_the_settings_class(tmp_path: Path, redis_url: str, target: str) -> None:
    write_app(tmp_path, redis_url, queue="mail")
    job_id = asyncio.run(enqueue(redis_url, "mail"))
    result = invoke("start", target, "--burst")
    assert result.exit_code == 0, result.output
    banner = result.stdout.splitlines()
    assert re.fullmatch(rf"runner 0\.1\.0: {re.escape(target)} \(arq settings\), Redis {redis_url} \(.+\)", banner[0])
    assert banner[1] == "  queue mail: functions send_email; cron jobs none; max_jobs 3, burst"
    assert asyncio.run(result_of(redis_url, job_id, "mail")) == "sent to a@b.c by arqapp"
    assert re.search(rf"← {job_id}:send_email ● 'sent to a@b.c by arqapp'", result.stderr)


@pytest.mark.parametrize(("event_loop", "name"), [("asyncio", "asyncio"), ("uvloop", "uvloop"), (None, "uvloop")])
def test_the_settings_class_names_the_event_loop(
    tmp_path: Path, redis_url: str, event_loop: str | None, name: str
) -> None:
    # an attribute like any other Worker argument; without it "auto", which is uvloop where it is installed
    write_app(tmp_path, redis_url, attributes="" if event_loop is None else f'    event_loop = "{event_loop}"\n')
    job_id = asyncio.run(enqueue(redis_url, "arq:queue"))
    result = invoke("start", "arqapp.worker.WorkerSettings", "--burst")
    assert result.exit_code == 0, result.output
    assert re.search(rf"worker \w+ on arq:queue \(event loop: {name}\): 1 functions: send_email", result.stderr)
    assert asyncio.run(result_of(redis_url, job_id, "arq:queue")) == "sent to a@b.c by arqapp"


def test_an_unknown_settings_class_is_one_line(tmp_path: Path) -> None:
    result = invoke("start", "arqapp.nowhere.WorkerSettings")
    assert result.exit_code == 3
    assert result.stderr.startswith('Error: Could not import module "arqapp.nowhere"')
    assert len(result.stderr.splitlines()) == 1


def test_a_queue_the_class_does_not_serve_is_a_usage_error(tmp_path: Path, redis_url: str) -> None:
    write_app(tmp_path, redis_url)
    result = invoke("start", "arqapp.worker.WorkerSettings", "--queue", "other")
    assert result.exit_code == 2
    assert result.stderr == (
        'Error: queue "other" is not served by arqapp.worker.WorkerSettings; it serves arq:queue\n'
    )


def test_a_toml_path_that_does_not_exist_is_still_a_file_error(tmp_path: Path) -> None:
    result = invoke("start", "missing.toml")
    assert result.exit_code == 3
    assert "missing.toml" in result.stderr


async def double(ctx: dict[str, object], n: int) -> int:
    return 2 * n


async def test_watch_reload_runs_the_worker_and_returns_when_it_ends(tmp_path: Path, redis_url: str) -> None:
    from runner.cli import watch_reload

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        job = await pool.enqueue_job("double", 21)
        assert job is not None
        settings = {
            "functions": [double],
            "redis_settings": RedisSettings.from_dsn(redis_url),
            "burst": True,
            "poll_delay": 0.05,
            "handle_signals": False,
        }
        await asyncio.wait_for(watch_reload(str(tmp_path), settings), 10)
        assert await job.result(timeout=5) == 42
    finally:
        await pool.aclose()


def test_check_of_a_settings_class_is_arqs_health_check(tmp_path: Path, redis_url: str) -> None:
    write_app(tmp_path, redis_url, queue="mail")
    missing = invoke("check", "arqapp.worker.WorkerSettings")
    assert (missing.exit_code, missing.stdout) == (1, "queue mail: no health record at mail:health-check\n")

    async def record() -> None:
        pool = await create_pool(RedisSettings.from_dsn(redis_url))
        try:
            await pool.set("mail:health-check", b"Dec-01 10:00:00 j_complete=1 j_failed=0", px=10_000)
        finally:
            await pool.aclose()

    asyncio.run(record())
    found = invoke("check", "arqapp.worker.WorkerSettings")
    assert (found.exit_code, found.stdout) == (0, "queue mail: Dec-01 10:00:00 j_complete=1 j_failed=0\n")


def test_watch_passes_the_metrics_port_to_the_worker_it_runs(tmp_path: Path, redis_url: str) -> None:
    # under --watch the settings class runs in a child of the supervisor, which must serve --metrics-port
    pytest.importorskip("prometheus_client")
    write_app(tmp_path, redis_url)
    port = free_port()
    argv = ["start", "arqapp.worker.WorkerSettings", "--watch", "arqapp", "--metrics-port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", *argv],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not metrics_answer("127.0.0.1", port):
            assert proc.poll() is None, f"runner start exited with {proc.returncode}: {proc.stderr.read()!r}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no metrics on --metrics-port under --watch"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == 0
