"""``runner start`` shows what job code logs: in runner's format, at the level the user chose, naming the job."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.engine import RedisSettings, create_pool
from runner.engine.job_context import CURRENT_JOB, JobContext, JobContextFilter, enter_job
from tests.support.cli import clean_env, invoke

TASKS = """
import asyncio
import logging

log = logging.getLogger("logtasks")


async def greet(ctx, name):
    log.debug("looking %s up", name)
    log.info("greeting %s", name)
    await asyncio.to_thread(log.warning, "from a thread for %s", name)
    return f"hi {name}"


def crunch(ctx, n):
    log.info("crunching %s", n)
    return n * 2
"""

TOML = """\
{head}
[redis]
url = "{url}"
conn_retries = 0

[functions.greet]
path = "logtasks:greet"
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("logtasks", None)
    (tmp_path / "logtasks.py").write_text(TASKS)
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    # runner start configures the root logger of this process; put it back for the next test
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("runner").setLevel(logging.NOTSET)


def project(tmp_path: Path, url: str, head: str = "") -> None:
    (tmp_path / "worker.toml").write_text(TOML.format(url=url, head=head))


async def _enqueue(url: str, name: str) -> str:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        job = await pool.enqueue_job("greet", name)
        assert job is not None
        return job.job_id
    finally:
        await pool.aclose()


def enqueue(url: str, name: str) -> str:
    return asyncio.run(_enqueue(url, name))


def test_job_code_logs_in_the_text_format_with_its_job(tmp_path: Path, redis_url: str) -> None:
    project(tmp_path, redis_url)
    job_id = enqueue(redis_url, "ada")
    result = invoke("start", "worker.toml", "--burst")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert any(re.fullmatch(rf"\d\d:\d\d:\d\d: \[{job_id}:greet\] logtasks: greeting ada", line) for line in lines)
    warning = rf"\d\d:\d\d:\d\d: \[{job_id}:greet\] logtasks WARNING: from a thread for ada"
    assert any(re.fullmatch(warning, line) for line in lines), result.stderr
    assert "looking ada up" not in result.stderr  # debug is below the default level, info


def test_json_lines_carry_the_job_fields_and_the_banner_is_json(tmp_path: Path, redis_url: str) -> None:
    project(tmp_path, redis_url)
    job_id = enqueue(redis_url, "grace")
    result = invoke("start", "worker.toml", "--burst", "--log-format", "json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON, job code's too
    ours = [r for r in records if r["logger"] == "logtasks"]
    assert [(r["level"], r["message"]) for r in ours] == [
        ("info", "greeting grace"),
        ("warning", "from a thread for grace"),
    ]
    for record in ours:
        assert {k: record[k] for k in ("job_id", "function", "job_try", "queue")} == {
            "job_id": job_id,
            "function": "greet",
            "job_try": 1,
            "queue": "arq:queue",
        }
    (banner,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert banner["event"] == "banner" and banner["logger"] == "runner.cli" and banner["level"] == "info"
    assert banner["file"] == "worker.toml" and banner["redis"] == redis_url
    assert banner["queues"] == [
        {"queue": "arq:queue", "functions": ["greet"], "cron": {}, "max_jobs": 10, "burst": True}
    ]
    assert banner["message"].startswith("runner 0.1.0: worker.toml, Redis ")


def test_the_level_comes_from_the_flag_then_the_env_then_the_file(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path, redis_url, 'log_level = "warning"')
    enqueue(redis_url, "quiet")
    quiet = invoke("start", "worker.toml", "--burst")
    assert quiet.exit_code == 0, quiet.output
    assert "from a thread for quiet" in quiet.stderr
    assert "greeting quiet" not in quiet.stderr and "→" not in quiet.stderr  # info lines, runner's too, are hidden

    enqueue(redis_url, "loud")
    loud = invoke("start", "worker.toml", "--burst", "--log-level", "DEBUG")
    assert "looking loud up" in loud.stderr and "greeting loud" in loud.stderr

    monkeypatch.setenv("RUNNER_LOG_LEVEL", "info")
    enqueue(redis_url, "env")
    env = invoke("start", "worker.toml", "--burst")
    assert "greeting env" in env.stderr and "looking env up" not in env.stderr


def test_a_bad_level_is_one_line(tmp_path: Path, redis_url: str) -> None:
    project(tmp_path, redis_url, 'log_level = "verbose"')
    result = invoke("validate", "worker.toml")
    assert result.exit_code == 1
    assert result.stdout == (
        'worker.toml:1: log_level: must be one of "debug", "info", "warning", "error" or "critical" (got "verbose")\n'
    )
    flag = invoke("start", "worker.toml", "--log-level", "loud")
    assert flag.exit_code == 2
    assert "Invalid value for '--log-level'" in flag.stderr


def test_the_filter_names_the_job_only_inside_one() -> None:
    outside = logging.makeLogRecord({"msg": "x"})
    assert JobContextFilter().filter(outside) and not hasattr(outside, "job_id")
    token = enter_job(JobContext("j1", "greet", 2, "mail"))
    try:
        inside = logging.makeLogRecord({"msg": "y"})
        assert JobContextFilter().filter(inside)
        assert (inside.job_id, inside.function, inside.job_try, inside.queue) == ("j1", "greet", 2, "mail")
        # the worker's own job lines name their job already: kept as they are
        own = logging.makeLogRecord({"msg": "z", "job_id": "other"})
        JobContextFilter().filter(own)
        assert own.job_id == "other"
    finally:
        CURRENT_JOB.reset(token)


def test_worker_processes_get_the_level_too(tmp_path: Path, redis_url: str) -> None:
    project(tmp_path, redis_url)
    enqueue(redis_url, "many")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RUNNER_") and k.upper() != "REDIS_URL"}
    command = ["start", "worker.toml", "--processes", "2", "--burst", "--log-level", "warning"]
    done = subprocess.run(
        [sys.executable, "-m", "runner.cli", *command],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "logtasks WARNING: from a thread for many" in done.stderr
    assert "greeting many" not in done.stderr and "started worker process" not in done.stderr


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_job_process_logs_in_the_workers_format_with_its_job(tmp_path: Path, redis_url: str, log_format: str) -> None:
    """A job on the process executor logs in its own interpreter: the same format, the same job fields."""
    (tmp_path / "worker.toml").write_text(
        f'[redis]\nurl = "{redis_url}"\nconn_retries = 0\n\n'
        '[functions.crunch]\npath = "logtasks:crunch"\nexecutor = "process"\n'
    )
    job_id = asyncio.run(_enqueue_crunch(redis_url))
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RUNNER_") and k.upper() != "REDIS_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "runner.cli", "start", "worker.toml", "--burst", "--log-format", log_format],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if log_format == "text":
        line = rf"\d\d:\d\d:\d\d: \[{job_id}:crunch\] logtasks: crunching 21"
        assert any(re.fullmatch(line, text) for text in done.stderr.splitlines()), done.stderr
        return
    records = [json.loads(line) for line in done.stderr.splitlines()]  # the job process's lines are JSON too
    (ours,) = [r for r in records if r["logger"] == "logtasks"]
    assert ours["message"] == "crunching 21" and ours["level"] == "info"
    assert {k: ours[k] for k in ("job_id", "function", "job_try", "queue")} == {
        "job_id": job_id,
        "function": "crunch",
        "job_try": 1,
        "queue": "arq:queue",
    }


async def _enqueue_crunch(url: str) -> str:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        job = await pool.enqueue_job("crunch", 21)
        assert job is not None
        return job.job_id
    finally:
        await pool.aclose()
