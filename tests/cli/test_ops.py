"""``runner check`` and ``runner info`` against a real server, with real workers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner.engine import RunnerRedis
from tests.support.cli import invoke
from tests.support.ops import (
    WorkerThread,
    burst,
    drop_health,
    enqueue,
    project,
    run,
    wait_status,
    with_pool,
    worker_thread,
)
from tests.support.servers import free_port

__all__ = ["project", "worker_thread"]  # fixtures

HEALTH = r"[A-Z][a-z]{2}-\d\d \d\d:\d\d:\d\d j_complete=\d+ j_failed=\d+ j_retried=\d+ j_ongoing=\d+ queued=\d+"


# -- check ----------------------------------------------------------------------------------------------------------


def test_check_without_workers_fails(project: Path) -> None:
    result = invoke("check", "worker.toml")
    assert result.exit_code == 1
    assert result.stdout == (
        "queue mail: no worker reported within 11s\nqueue maintenance: no worker reported within 11s\n"
    )


def test_check_lists_every_worker(project: Path, redis_url: str, worker_thread: list[WorkerThread]) -> None:
    first = WorkerThread(project, "mail").start(redis_url)
    worker_thread.append(first)
    second = WorkerThread(project, "mail").start(redis_url)
    worker_thread.append(second)
    result = invoke("check", "worker.toml", "--queue", "mail")
    assert result.exit_code == 0, result.output
    ids = sorted([first.workers[0].worker_id, second.workers[0].worker_id])
    assert re.fullmatch(
        f"queue mail: 2 workers reported within 11s\n  {ids[0]}: {HEALTH}\n  {ids[1]}: {HEALTH}\n", result.stdout
    ), result.stdout
    # one queue without a worker makes the whole check fail
    result = invoke("check", "worker.toml")
    assert result.exit_code == 1
    assert result.stdout.endswith("queue maintenance: no worker reported within 11s\n")


def test_check_accepts_an_arq_workers_shared_key(project: Path, redis_url: str) -> None:
    async def write(pool: RunnerRedis) -> None:
        await pool.set("maintenance:health-check", b"Nov-23 10:00:00 j_complete=1 j_failed=0", px=5000)

    run(with_pool(redis_url, write))
    result = invoke("check", "worker.toml", "--queue", "maintenance")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "queue maintenance: an arq worker reported within 3600s (shared key only)\n"
        "  Nov-23 10:00:00 j_complete=1 j_failed=0\n"
    )


def test_check_unknown_queue_is_a_usage_error(project: Path) -> None:
    result = invoke("check", "worker.toml", "--queue", "nope")
    assert result.exit_code == 2
    assert 'queue "nope" is not in worker.toml; choose one of: mail, maintenance' in result.stderr


def test_redis_down_is_one_line(project: Path, redis_url: str) -> None:
    project.write_text(project.read_text().replace(redis_url, f"redis://127.0.0.1:{free_port()}/0"))
    for args in (
        ["check", "worker.toml"],
        ["info", "worker.toml"],
        ["jobs", "worker.toml", "list"],
        ["enqueue", "worker.toml", "add", "1", "2"],
    ):
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("Error: Could not connect to Redis at redis://127.0.0.1:")


def test_broken_file_is_reported(project: Path) -> None:
    project.write_text(project.read_text() + "\nmax_jobz = 3\n")
    result = invoke("info", "worker.toml")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: worker.toml:")
    assert "max_jobz" in result.stderr


# -- info -----------------------------------------------------------------------------------------------------------


def _fill_queues(url: str, config: Path) -> None:
    """mail: 3 completed and 1 failed job just now, 2 waiting (the oldest for an hour), 1 deferred."""
    for n in range(3):
        enqueue(url, "add", n, n, _queue_name="mail")
    enqueue(url, "fails", 1, _queue_name="mail")
    burst(config, "mail")
    drop_health(url)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    enqueue(url, "add", 1, 2, _queue_name="mail", _defer_until=an_hour_ago)
    enqueue(url, "send_email", "a@b.c", _queue_name="mail")
    enqueue(url, "send_email", "later@b.c", _queue_name="mail", _defer_by=3600)


def test_info_text(project: Path, redis_url: str) -> None:
    _fill_queues(redis_url, project)
    result = invoke("info", "worker.toml")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "QUEUE        QUEUED  DEFERRED  IN PROGRESS  OLDEST  DONE/MIN  FAILED/MIN  WORKERS\n"
        "mail              2         1            0   1h00m       0.6         0.2        0\n"
        "maintenance       0         0            0       -       0.0         0.0        0\n"
        "(per minute over the last 5 minutes; OLDEST: the longest wait of a due job)\n"
    )


def test_info_json(project: Path, redis_url: str) -> None:
    _fill_queues(redis_url, project)
    result = invoke("info", "worker.toml", "--format", "json", "--queue", "mail")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    (mail,) = document["queues"]
    age = mail.pop("oldest_queued_age_s")
    assert 3600 <= age < 3700
    assert mail == {
        "queue": "mail",
        "queued": 2,
        "deferred": 1,
        "in_progress": 0,
        "completed_per_min": 0.6,
        "failed_per_min": 0.2,
        "retried_per_min": 0.0,
        "window_minutes": 5,
        "completed_in_window": 3,
        "failed_in_window": 1,
        "retried_in_window": 0,
        "workers_alive": 0,
        "workers": [],
        "arq_health": None,
        "limits": [],
    }


def test_info_counts_running_jobs_and_live_workers(
    project: Path, redis_url: str, worker_thread: list[WorkerThread]
) -> None:
    thread = WorkerThread(project, "mail").start(redis_url)
    worker_thread.append(thread)
    job_id = enqueue(redis_url, "slow", _queue_name="mail")
    wait_status(redis_url, job_id, "mail", "in_progress")
    result = invoke("info", "worker.toml", "--queue", "mail")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == (
        "mail        0         0            1       -       0.0         0.0        1"
    )
    # JSON gives the health records as fields, not as arq's one-line string
    (mail,) = json.loads(invoke("info", "worker.toml", "--format", "json", "--queue", "mail").stdout)["queues"]
    (worker,) = mail["workers"]
    assert worker["id"] == thread.workers[0].worker_id
    assert re.fullmatch(HEALTH, worker["health_line"])
    assert set(worker["health"]) == {"time", "complete", "failed", "retried", "ongoing", "queued"}
    assert re.fullmatch(r"[A-Z][a-z]{2}-\d\d \d\d:\d\d:\d\d", worker["health"]["time"])
    assert all(isinstance(worker["health"][k], int) for k in ("complete", "failed", "retried", "ongoing", "queued"))
    assert 0 < worker["expires_in_s"] <= 3601
    assert mail["arq_health"] is None  # the shared key holds this runner worker's line: it is not an arq worker


def test_info_parses_an_arq_workers_shared_key(project: Path, redis_url: str) -> None:
    async def write(pool: RunnerRedis) -> None:
        await pool.set("mail:health-check", b"Nov-23 10:00:00 j_complete=4 j_failed=1 j_retried=0 j_ongoing=2 queued=7")

    run(with_pool(redis_url, write))
    (mail,) = json.loads(invoke("info", "worker.toml", "--format", "json", "--queue", "mail").stdout)["queues"]
    assert mail["workers_alive"] == 1
    assert mail["arq_health"] == {
        "time": "Nov-23 10:00:00", "complete": 4, "failed": 1, "retried": 0, "ongoing": 2, "queued": 7,
    }  # fmt: skip


def test_parse_health_line() -> None:
    from runner.engine.inspection import parse_health_line

    line = "Nov-23 21:50:12 j_complete=3 j_failed=0 j_retried=1 j_ongoing=2 queued=5"
    assert parse_health_line(line) == {
        "time": "Nov-23 21:50:12",
        "complete": 3,
        "failed": 0,
        "retried": 1,
        "ongoing": 2,
        "queued": 5,
    }
    assert parse_health_line("Nov-23 10:00:00 j_complete=1 j_failed=0") == {
        "time": "Nov-23 10:00:00",
        "complete": 1,
        "failed": 0,
    }
    assert parse_health_line("something else") == {"time": "something else"}


def test_info_watch_redraws(project: Path, redis_url: str) -> None:
    result = invoke("info", "worker.toml", "--watch", "-n", "2", "--interval", "0.05", "--queue", "maintenance")
    assert result.exit_code == 0, result.output
    frame = (
        "QUEUE        QUEUED  DEFERRED  IN PROGRESS  OLDEST  DONE/MIN  FAILED/MIN  WORKERS\n"
        "maintenance       0         0            0       -       0.0         0.0        0\n"
        "(per minute over the last 5 minutes; OLDEST: the longest wait of a due job)\n"
    )
    title = r"worker\.toml at \d\d:\d\d:\d\d UTC, every 0\.05s \(Ctrl-C to stop\)\n"
    # not a terminal here, so frames follow each other instead of clearing the screen
    assert re.fullmatch(f"{title}{re.escape(frame)}\n{title}{re.escape(frame)}", result.stdout), result.stdout


def test_info_watch_json_is_one_object_per_refresh(project: Path) -> None:
    result = invoke("info", "worker.toml", "--watch", "-n", "3", "--interval", "0.05", "--format", "json")
    assert result.exit_code == 0, result.output
    frames = [json.loads(line) for line in result.stdout.splitlines()]
    assert [[q["queue"] for q in f["queues"]] for f in frames] == [["mail", "maintenance"]] * 3
