"""Prometheus metrics of ``runner start --metrics-port`` and the JSON job-event logs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from runner.config import build_workers, load_settings
from runner.metrics import JobMetrics
from tests.support.cli import invoke
from tests.support.ops import enqueue, metrics_answer, project
from tests.support.servers import free_port

__all__ = ["project"]  # fixtures

pytest.importorskip("prometheus_client")


def test_job_events_become_counters(project: Path, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    # the metrics subscribe to the worker's job events: a quiet log loses none of them
    caplog.set_level(logging.ERROR, logger="runner")
    metrics = JobMetrics()
    enqueue(redis_url, "add", 1, 2, _queue_name="mail")
    enqueue(redis_url, "add", 3, 4, _queue_name="mail")
    enqueue(redis_url, "fails", 1, _queue_name="mail")
    enqueue(redis_url, "again", _queue_name="mail")
    loaded = load_settings(project, flags={"burst": True})
    (worker,) = build_workers(loaded.settings, "mail", base_dir=loaded.directory)
    worker.subscribe(metrics)

    async def run() -> None:
        try:
            await worker.async_run()
        finally:
            await worker.close()  # async_run leaves it to the caller, as arq's does

    asyncio.run(run())

    def sample(name: str, function: str) -> float | None:
        value: float | None = metrics.registry.get_sample_value(name, {"queue": "mail", "function": function})
        return value

    assert sample("runner_jobs_started_total", "add") == 2
    assert sample("runner_jobs_completed_total", "add") == 2
    assert sample("runner_job_duration_seconds_count", "add") == 2
    assert sample("runner_jobs_failed_total", "fails") == 1
    assert sample("runner_jobs_completed_total", "fails") is None
    assert sample("runner_jobs_started_total", "again") == 2
    assert sample("runner_jobs_retried_total", "again") == 1
    assert sample("runner_jobs_completed_total", "again") == 1


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


def wait_for_metric(port: int, line: str) -> str:
    deadline = time.monotonic() + 30
    text = ""
    while time.monotonic() < deadline:
        try:
            text = scrape(port)
        except OSError:
            text = ""
        if line in text.splitlines():
            return text
        time.sleep(0.1)
    raise AssertionError(f"no line {line!r} in:\n{text}")


def test_start_serves_metrics(project: Path, redis_url: str) -> None:
    enqueue(redis_url, "add", 1, 1, _queue_name="mail", _defer_by=3600)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "start", "worker.toml", "--queue", "mail", "--metrics-port", str(port)],
        cwd=project.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_metric(port, 'runner_queue_jobs{queue="mail",state="deferred"} 1.0')
        enqueue(redis_url, "add", 2, 3, _queue_name="mail")
        enqueue(redis_url, "fails", 2, _queue_name="mail")
        text = wait_for_metric(port, 'runner_jobs_failed_total{function="fails",queue="mail"} 1.0')
        text = wait_for_metric(port, 'runner_jobs_completed_total{function="add",queue="mail"} 1.0')
        lines = text.splitlines()
        assert 'runner_jobs_started_total{function="add",queue="mail"} 1.0' in lines
        assert 'runner_job_duration_seconds_count{function="add",queue="mail"} 1.0' in lines
        # the gauges are refreshed every few seconds; once both jobs are done they settle here
        wait_for_metric(port, 'runner_jobs_in_progress{queue="mail"} 0.0')
        wait_for_metric(port, 'runner_queue_oldest_age_seconds{queue="mail"} 0.0')
        wait_for_metric(port, 'runner_queue_jobs{queue="mail",state="queued"} 0.0')
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def test_metrics_port_in_use(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("start", "worker.toml", "--burst", "--metrics-port", str(port))
    assert result.exit_code == 3
    assert result.stderr.startswith(f"Error: Could not serve metrics on 127.0.0.1 port {port}: ")
    assert result.stderr.endswith("; choose another --metrics-port or --metrics-host.\n")


@pytest.mark.parametrize(
    ("flags", "host", "other"),
    [((), "127.0.0.1", "127.0.0.2"), (("--metrics-host", "127.0.0.2"), "127.0.0.2", "127.0.0.1")],
)
def test_metrics_listen_on_loopback_unless_told(
    project: Path, redis_url: str, flags: tuple[str, ...], host: str, other: str
) -> None:
    port = free_port()
    result = invoke("start", "worker.toml", "--burst", "--queue", "mail", "--metrics-port", str(port), *flags)
    assert result.exit_code == 0, result.output
    assert f"metrics at http://{host}:{port}/metrics\n" in result.stderr

    async def serve() -> None:
        from runner.metrics import MetricsExporter

        loaded = load_settings(project)
        workers = build_workers(loaded.settings, "mail", base_dir=loaded.directory)
        kwargs = {"host": host} if flags else {}
        exporter = MetricsExporter(port, workers, workers[0].redis_settings, **kwargs)
        await exporter.start()
        try:
            assert await asyncio.to_thread(metrics_answer, host, port)
            assert not await asyncio.to_thread(metrics_answer, other, port)  # bound to that address only, not 0.0.0.0
        finally:
            await exporter.stop()

    asyncio.run(serve())


def test_metrics_port_with_processes_is_a_usage_error(project: Path) -> None:
    result = invoke("start", "worker.toml", "--processes", "2", "--metrics-port", "9100")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --metrics-port serves one process; run one `runner start --queue …` per port instead\n"
    )


def test_json_logs_carry_job_fields(project: Path, redis_url: str) -> None:
    job_id = enqueue(redis_url, "add", 5, 6, _queue_name="mail")
    failed_id = enqueue(redis_url, "fails", 9, _queue_name="mail")
    result = invoke("start", "worker.toml", "--burst", "--queue", "mail", "--log-format", "json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stderr.splitlines()]
    events = [
        {k: r[k] for k in ("job_id", "function", "job_try", "outcome", "queue")} for r in records if "outcome" in r
    ]
    assert sorted(events, key=lambda e: (e["function"], e["outcome"])) == [
        {"job_id": job_id, "function": "add", "job_try": 1, "outcome": "complete", "queue": "mail"},
        {"job_id": job_id, "function": "add", "job_try": 1, "outcome": "started", "queue": "mail"},
        {"job_id": failed_id, "function": "fails", "job_try": 1, "outcome": "failed", "queue": "mail"},
        {"job_id": failed_id, "function": "fails", "job_try": 1, "outcome": "started", "queue": "mail"},
    ]
    finished = [r for r in records if r.get("outcome") in ("complete", "failed")]
    assert all(isinstance(r["duration"], float) and r["duration"] >= 0 for r in finished)
    assert all(r["duration"] is None for r in records if r.get("outcome") == "started")
    # the message is the same one-line event as in text mode; a failure carries its traceback
    (complete,) = [r for r in finished if r["outcome"] == "complete"]
    assert re.fullmatch(rf" *\d+\.\d\ds ← {job_id}:add ● 11", complete["message"]), complete["message"]
    (failure,) = [r for r in finished if r["outcome"] == "failed"]
    assert failure["exception"].endswith("ValueError: boom 9")
