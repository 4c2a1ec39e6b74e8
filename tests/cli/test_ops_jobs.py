"""``runner jobs`` and ``runner enqueue`` against a real server, with real workers."""

from __future__ import annotations

import json
import os
import pickle
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.engine import Job, RunnerRedis
from runner.engine.utils import ms_to_datetime, timestamp_ms
from tests.support.cli import invoke
from tests.support.ops import WorkerThread, burst, enqueue, project, run, wait_status, with_pool, worker_thread

__all__ = ["project", "worker_thread"]  # fixtures


def enqueued_at(url: str, job_id: str, queue: str = "mail") -> str:
    async def go(pool: RunnerRedis) -> str:
        info = await Job(job_id, pool, _queue_name=queue).info()
        assert info is not None
        return info.enqueue_time.strftime("%Y-%m-%d %H:%M:%S")

    result: str = run(with_pool(url, go))
    return result


def invoke_with_input(text: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), input=text, prog_name="runner")


def result_info(url: str, job_id: str) -> Any:
    return run(with_pool(url, lambda pool: Job(job_id, pool).result_info()))


# -- list -----------------------------------------------------------------------------------------------------------


def test_list_every_status(project: Path, redis_url: str) -> None:
    enqueue(redis_url, "add", 1, 2, _queue_name="mail", _job_id="done")
    enqueue(redis_url, "fails", 7, _queue_name="mail", _job_id="broken")
    burst(project, "mail")
    enqueue(redis_url, "send_email", "a@b.c", _queue_name="mail", _job_id="waiting")
    enqueue(redis_url, "send_email", "z@b.c", _queue_name="mail", _job_id="later", _defer_by=3600)
    enqueue(redis_url, "cleanup", _queue_name="maintenance", _job_id="tidy")
    t = {
        job_id: enqueued_at(redis_url, job_id, q)
        for job_id, q in [("waiting", "mail"), ("later", "mail"), ("tidy", "maintenance")]
    }
    t["done"] = result_info(redis_url, "done").enqueue_time.strftime("%Y-%m-%d %H:%M:%S")
    t["broken"] = result_info(redis_url, "broken").enqueue_time.strftime("%Y-%m-%d %H:%M:%S")
    result = invoke("jobs", "worker.toml", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "ID       STATUS    QUEUE        TRY  ENQUEUED (UTC)       JOB"
    # queue order first (due before deferred), then results newest first
    assert lines[1:4] == [
        f"waiting  queued    mail           -  {t['waiting']}  send_email('a@b.c')",
        f"later    deferred  mail           -  {t['later']}  send_email('z@b.c')",
        f"tidy     queued    maintenance    -  {t['tidy']}  cleanup()",
    ]
    assert sorted(lines[4:]) == [
        f"broken   failed    mail           1  {t['broken']}  fails(7)",
        f"done     complete  mail           1  {t['done']}  add(1, 2)",
    ]
    failed = invoke("jobs", "worker.toml", "list", "--status", "failed")
    assert failed.stdout == (
        f"ID      STATUS  QUEUE  TRY  ENQUEUED (UTC)       JOB\nbroken  failed  mail     1  {t['broken']}  fails(7)\n"
    )
    by_function = invoke("jobs", "worker.toml", "list", "--function", "send_email", "--limit", "1")
    assert by_function.stdout == (
        "ID       STATUS  QUEUE  TRY  ENQUEUED (UTC)       JOB\n"
        f"waiting  queued  mail     -  {t['waiting']}  send_email('a@b.c')\n"
    )
    assert by_function.stderr == "showing the first 1 job; --limit 0 shows all\n"
    none = invoke("jobs", "worker.toml", "list", "--status", "in_progress")
    assert (none.exit_code, none.stdout, none.stderr) == (0, "", "no jobs match\n")
    as_json = json.loads(invoke("jobs", "worker.toml", "list", "--queue", "maintenance", "--format", "json").stdout)
    assert as_json == [
        {
            "id": "tidy",
            "status": "queued",
            "queue": "maintenance",
            "function": "cleanup",
            "args": [],
            "kwargs": {},
            "try": None,
            "enqueued": t["tidy"],
            "due": t["tidy"],
        }
    ]


def test_list_shows_running_jobs(project: Path, redis_url: str, worker_thread: list[WorkerThread]) -> None:
    worker_thread.append(WorkerThread(project, "mail").start(redis_url))
    enqueue(redis_url, "slow", _queue_name="mail", _job_id="long")
    wait_status(redis_url, "long", "mail", "in_progress")
    result = invoke("jobs", "worker.toml", "list", "--status", "in_progress")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "ID    STATUS       QUEUE  TRY  ENQUEUED (UTC)       JOB\n"
        f"long  in_progress  mail     1  {enqueued_at(redis_url, 'long')}  slow()\n"
    )


# -- show -----------------------------------------------------------------------------------------------------------


def test_show_failed_job_with_traceback(project: Path, redis_url: str) -> None:
    enqueue(redis_url, "fails", 3, _queue_name="mail", _job_id="broken")
    burst(project, "mail")
    info = result_info(redis_url, "broken")
    fmt = "%Y-%m-%d %H:%M:%S"
    result = invoke("jobs", "worker.toml", "show", "broken")
    assert result.exit_code == 0, result.output
    head, _, trace = result.stdout.partition("  traceback:\n")
    assert head == (
        "job broken\n"
        "  status    failed\n"
        "  queue     mail\n"
        "  job       fails(3)\n"
        "  tries     1\n"
        f"  enqueued  {info.enqueue_time.strftime(fmt)} UTC\n"
        f"  started   {info.start_time.strftime(fmt)} UTC\n"
        f"  finished  {info.finish_time.strftime(fmt)} UTC\n"
        f"  took      {(info.finish_time - info.start_time).total_seconds():.1f}s\n"
        "  error     ValueError: boom 3\n"
    )
    lines = trace.splitlines()
    assert lines[0] == "    Traceback (most recent call last):"
    assert re.fullmatch(r'      File ".*opstasks\.py", line \d+, in fails', lines[-3])
    assert lines[-2:] == ['        raise ValueError(f"boom {x}")', "    ValueError: boom 3"]
    document = json.loads(invoke("jobs", "worker.toml", "show", "broken", "--format", "json").stdout)
    assert document["error"] == "ValueError: boom 3"
    assert document["traceback"].endswith("ValueError: boom 3\n")


def test_show_without_a_stored_traceback(project: Path, redis_url: str) -> None:
    # the json serializer keeps an error's type and message only
    project.write_text('serializer = "json"\n' + project.read_text())
    assert invoke("enqueue", "worker.toml", "--job-id", "j", "fails", "4").exit_code == 0
    burst(project, "mail")
    result = invoke("jobs", "worker.toml", "show", "j")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "  error     ValueError: boom 4"
    assert "traceback" not in result.stdout


def test_show_complete_and_queued_jobs(project: Path, redis_url: str) -> None:
    enqueue(redis_url, "send_email", "a@b.c", subject="yo", _queue_name="mail", _job_id="sent")
    burst(project, "mail")
    info = result_info(redis_url, "sent")
    result = invoke("jobs", "worker.toml", "show", "sent")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:4] == [
        "  status    complete",
        "  queue     mail",
        "  job       send_email('a@b.c', subject='yo')",
    ]
    assert result.stdout.splitlines()[-1] == "  result    'sent yo to a@b.c'"
    assert info.success

    enqueue(redis_url, "cleanup", _queue_name="maintenance", _job_id="tidy", _defer_by=7200)
    result = invoke("jobs", "worker.toml", "show", "tidy")
    assert result.exit_code == 0, result.output
    at = enqueued_at(redis_url, "tidy", "maintenance")
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        "job tidy",
        "  status    deferred",
        "  queue     maintenance",
        "  job       cleanup()",
        "  tries     0",
        f"  enqueued  {at} UTC",
    ]
    assert re.fullmatch(r"  due       \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 1h59m\)", lines[6]), lines[6]


class Trap:
    """Unpickling this makes a directory: the proof that a payload ran code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.path,))


class PaymentDeclined(Exception):
    pass


def test_inspection_runs_no_code_from_redis(project: Path, redis_url: str, tmp_path: Path) -> None:
    trap = tmp_path / "ran"
    now = timestamp_ms()
    error = PaymentDeclined("card declined")
    error.__dict__["runner_traceback"] = "Traceback (most recent call last):\nPaymentDeclined: card declined\n"
    result = {"t": 1, "f": "send_email", "a": ("a@b.c",), "k": {}, "et": now, "s": False, "r": error, "st": now}
    client = redis.Redis.from_url(redis_url)
    try:
        job = {"t": None, "f": "send_email", "a": (Trap(trap),), "k": {}, "et": now}
        client.set("arq:job:planted", pickle.dumps(job))
        client.zadd("mail", {"planted": now})
        client.set("arq:result:declined", pickle.dumps({**result, "ft": now, "q": "mail", "id": "declined"}))
    finally:
        client.close()

    listed = invoke("jobs", "worker.toml", "list")
    assert listed.exit_code == 0, listed.output
    planted = next(line for line in listed.stdout.splitlines() if line.startswith("planted "))
    assert "send_email(<posix.mkdir(" in planted
    shown = invoke("jobs", "worker.toml", "show", "planted")
    assert f"  job       send_email(<posix.mkdir({str(trap)!r}), not decoded>)\n" in shown.stdout
    declined = invoke("jobs", "worker.toml", "show", "declined")
    assert declined.exit_code == 0, declined.output
    assert f"  error     {__name__}.PaymentDeclined: card declined (not unpickled here)\n" in declined.stdout
    assert declined.stdout.endswith(
        "  traceback:\n    Traceback (most recent call last):\n    PaymentDeclined: card declined\n"
    )
    assert invoke("jobs", "worker.toml", "list", "--format", "json").exit_code == 0
    assert not trap.exists()


def test_show_unknown_job(project: Path) -> None:
    result = invoke("jobs", "worker.toml", "show", "nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no job nope in queues mail, maintenance and no stored result (it may have finished with "
        "keep_result = 0, or its result expired)\n"
    )


# -- retry ----------------------------------------------------------------------------------------------------------


def test_retry_one_failed_job(project: Path, redis_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.write_text("")
    enqueue(redis_url, "flaky", str(marker), _queue_name="mail", _job_id="flaky-1")
    burst(project, "mail")
    assert result_info(redis_url, "flaky-1").success is False
    marker.unlink()
    result = invoke("jobs", "worker.toml", "retry", "flaky-1")
    assert (result.exit_code, result.stdout) == (0, "job flaky-1 queued again on mail\n"), result.output
    assert invoke("jobs", "worker.toml", "show", "flaky-1").stdout.splitlines()[1] == "  status    queued"
    burst(project, "mail")
    info = result_info(redis_url, "flaky-1")
    assert (info.success, info.result, info.job_try) == (True, "ok", 1)
    # a complete job is not retried
    again = invoke("jobs", "worker.toml", "retry", "flaky-1")
    assert again.exit_code == 1
    assert again.stderr == "Error: job flaky-1 is complete, not failed; only failed jobs can be retried\n"


def test_retry_all_failed(project: Path, redis_url: str) -> None:
    for n in range(3):
        enqueue(redis_url, "fails", n, _queue_name="mail", _job_id=f"f{n}")
    enqueue(redis_url, "add", 1, 1, _queue_name="mail", _job_id="fine")
    burst(project, "mail")
    result = invoke("jobs", "worker.toml", "retry", "--all-failed")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "queued 3 failed jobs again\n", "")
    listed = invoke("jobs", "worker.toml", "list", "--status", "queued").stdout
    assert sorted(line.split()[0] for line in listed.splitlines()[1:]) == ["f0", "f1", "f2"]
    assert invoke("jobs", "worker.toml", "retry", "--all-failed").stdout == "queued 0 failed jobs again\n"
    usage = invoke("jobs", "worker.toml", "retry", "f0", "--all-failed")
    assert usage.exit_code == 2
    assert "give a job ID or --all-failed (not both)" in usage.stderr


# -- abort ----------------------------------------------------------------------------------------------------------


def test_abort_running_job(project: Path, redis_url: str, worker_thread: list[WorkerThread]) -> None:
    worker_thread.append(WorkerThread(project, "mail").start(redis_url))
    enqueue(redis_url, "slow", _queue_name="mail", _job_id="long")
    wait_status(redis_url, "long", "mail", "in_progress")
    result = invoke("jobs", "worker.toml", "abort", "long")
    assert (result.exit_code, result.stdout) == (0, "job long aborted\n"), result.output
    shown = invoke("jobs", "worker.toml", "show", "long").stdout.splitlines()
    assert shown[1] == "  status    failed"
    assert shown[-1] == "  error     aborted (CancelledError)"
    finished = invoke("jobs", "worker.toml", "abort", "long")
    assert finished.stderr == "Error: job long already finished (failed); nothing to abort\n"


def test_abort_needs_allow_abort_jobs(project: Path, redis_url: str) -> None:
    enqueue(redis_url, "cleanup", _queue_name="maintenance", _job_id="tidy")
    result = invoke("jobs", "worker.toml", "abort", "tidy")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: queue maintenance does not allow aborting jobs; set allow_abort_jobs = true for it in worker.toml "
        "and restart its workers\n"
    )


def test_abort_without_worker_times_out(project: Path, redis_url: str) -> None:
    enqueue(redis_url, "add", 1, 1, _queue_name="mail", _job_id="stuck")
    result = invoke("jobs", "worker.toml", "abort", "stuck", "--timeout", "0.2")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: abort of job stuck requested, but it had not ended after 0.2s; is a worker running?\n"
    )


# -- purge ----------------------------------------------------------------------------------------------------------


def test_purge_asks_then_deletes(project: Path, redis_url: str) -> None:
    for n in range(3):
        enqueue(redis_url, "add", n, n, _queue_name="mail")
    enqueue(redis_url, "cleanup", _queue_name="maintenance", _job_id="keep")
    declined = invoke_with_input("n\n", "jobs", "worker.toml", "purge", "--queue", "mail")
    assert declined.exit_code == 1
    assert declined.stderr == "Delete 3 jobs from queue mail? [y/N]: n\nAborted!\n"
    accepted = invoke_with_input("y\n", "jobs", "worker.toml", "purge", "--queue", "mail")
    assert (accepted.exit_code, accepted.stdout) == (0, "deleted 3 jobs from queue mail\n")
    assert invoke("jobs", "worker.toml", "purge", "--queue", "mail").stdout == "queue mail has no jobs\n"

    async def left(pool: RunnerRedis) -> list[bytes]:
        return sorted(k for k in await pool.keys("*") if not k.startswith(b"runner:"))

    assert run(with_pool(redis_url, left)) == [b"arq:job:keep", b"maintenance"]


def test_purge_needs_no_queue_when_the_file_has_one(project: Path, redis_url: str) -> None:
    several = invoke("jobs", "worker.toml", "purge", "--yes")
    assert several.exit_code == 2
    assert "worker.toml has queues mail, maintenance; choose one with --queue" in several.stderr
    single = project.parent / "single"
    single.mkdir()
    text = (project).read_text().split("[queues.")[0]
    (single / "worker.toml").write_text(text)
    enqueue(redis_url, "add", 1, 1)
    enqueue(redis_url, "add", 2, 2)
    result = invoke("jobs", "single/worker.toml", "purge", "--yes")
    assert (result.exit_code, result.stdout) == (0, "deleted 2 jobs from queue arq:queue\n"), result.output


def test_purge_leaves_running_jobs(project: Path, redis_url: str, worker_thread: list[WorkerThread]) -> None:
    worker_thread.append(WorkerThread(project, "mail").start(redis_url))
    enqueue(redis_url, "slow", _queue_name="mail", _job_id="long")
    wait_status(redis_url, "long", "mail", "in_progress")
    enqueue(redis_url, "add", 1, 1, _queue_name="mail", _defer_by=3600)
    result = invoke("jobs", "worker.toml", "purge", "--queue", "mail", "--yes")
    assert (result.exit_code, result.stdout) == (0, "deleted 1 job from queue mail; 1 running job left to finish\n")


def test_purge_shows_progress_on_a_terminal(project: Path, redis_url: str) -> None:
    for n in range(5):
        enqueue(redis_url, "add", n, n, _queue_name="mail")
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner.cli", "jobs", "worker.toml", "purge", "--queue", "mail", "--yes"],
            cwd=project.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
        )
        os.close(secondary)
        secondary = -1
        out, _ = proc.communicate(timeout=60)
        terminal = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal's other end closed
                break
            if not chunk:
                break
            terminal += chunk
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)
    assert (proc.returncode, out) == (0, "deleted 5 jobs from queue mail\n")
    assert b"purging mail" in terminal and b"5/5" in terminal


# -- enqueue --------------------------------------------------------------------------------------------------------


def test_enqueue_and_wait_for_the_result(project: Path, redis_url: str, worker_thread: list[WorkerThread]) -> None:
    worker_thread.append(WorkerThread(project, "mail").start(redis_url))
    result = invoke(
        "enqueue",
        "worker.toml",
        "--wait",
        "--job-id",
        "e1",
        "--queue",
        "mail",
        "send_email",
        "x@y.z",
        "--kwargs",
        '{"subject": "news"}',
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == 'enqueued job e1 on mail\n"sent news to x@y.z"\n'
    numbers = invoke("enqueue", "worker.toml", "--wait", "add", "2", "40")
    assert numbers.exit_code == 0, numbers.output
    assert re.fullmatch(r"enqueued job [0-9a-f]{32} on mail\n42\n", numbers.stdout)
    failed = invoke("enqueue", "worker.toml", "--job-id", "e2", "fails", "5", "--wait", "20")
    assert failed.exit_code == 1
    assert (failed.stdout, failed.stderr) == ("enqueued job e2 on mail\n", "Error: job e2 failed: ValueError: boom 5\n")


def test_enqueue_without_a_worker(project: Path, redis_url: str) -> None:
    result = invoke(
        "enqueue",
        "worker.toml",
        "--job-id",
        "later",
        "--defer-by",
        "5m",
        "send_email",
        '"quoted"',
        "--kwargs",
        '{"subject": [1, 2.5, null]}',
    )
    assert (result.exit_code, result.stdout) == (0, "enqueued job later on mail\n"), result.output

    async def stored(pool: RunnerRedis) -> Any:
        return await Job("later", pool, _queue_name="mail").info()

    info = run(with_pool(redis_url, stored))
    assert (info.function, info.args, info.kwargs) == ("send_email", ("quoted",), {"subject": [1, 2.5, None]})
    assert 299 <= (ms_to_datetime(info.score) - info.enqueue_time).total_seconds() <= 301
    taken = invoke("enqueue", "worker.toml", "--job-id", "later", "send_email", "a")
    assert taken.exit_code == 1
    assert taken.stderr == (
        "Error: job id later is taken: a job with it is queued, running, or has a kept result; nothing was done\n"
    )
    waited = invoke("enqueue", "worker.toml", "--queue", "maintenance", "--wait=0.2", "--job-id", "w", "cleanup")
    assert waited.exit_code == 1
    assert waited.stderr == (
        "Error: job w did not finish within 0.2s; it stays queued on maintenance; is a worker running for it?\n"
    )


def test_enqueue_wait_says_a_running_job_is_running(
    project: Path, redis_url: str, worker_thread: list[WorkerThread]
) -> None:
    worker_thread.append(WorkerThread(project, "mail").start(redis_url))
    waited = invoke("enqueue", "worker.toml", "--wait", "1", "--job-id", "busy", "slow")
    assert waited.exit_code == 1
    assert waited.stderr == (
        "Error: job busy did not finish within 1s; it is still running, and its result will be kept as usual\n"
    )


def test_enqueue_bad_input(project: Path) -> None:
    unknown = invoke("enqueue", "worker.toml", "cleanup")
    assert unknown.exit_code == 2
    served = "send_email, add, fails, flaky, slow, again"
    assert f'function "cleanup" is not served by queue mail; its functions: {served}' in unknown.stderr
    bad_json = invoke("enqueue", "worker.toml", "add", "[1, 2")
    assert bad_json.exit_code == 2
    assert "Invalid value for ARGS: '[1, 2' is not valid JSON" in bad_json.stderr
    bad_kwargs = invoke("enqueue", "worker.toml", "add", "--kwargs", "[1]")
    assert bad_kwargs.exit_code == 2
    assert "Invalid value for --kwargs: must be a JSON object" in bad_kwargs.stderr
    bad_defer = invoke("enqueue", "worker.toml", "add", "--defer-by", "soon")
    assert bad_defer.exit_code == 2
    assert "'soon' is not a duration" in bad_defer.stderr


def test_enqueue_bulk(project: Path, redis_url: str, tmp_path: Path) -> None:
    lines = [json.dumps([n, n]) for n in range(700)] + ['{"args": [1], "kwargs": {"b": 2}}', ""]
    (tmp_path / "jobs.jsonl").write_text("\n".join(lines))
    result = invoke("enqueue", "worker.toml", "add", "--bulk", "jobs.jsonl")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "enqueued 701 jobs on mail\n", "")
    assert run(with_pool(redis_url, lambda pool: pool.zcard("mail"))) == 701
    bad = invoke_with_input('[1, 2]\n"x"\n', "enqueue", "worker.toml", "add", "--bulk", "-")
    assert bad.exit_code == 2
    assert 'line 2 must be a JSON array of args or {"args": [...], "kwargs": {...}}' in bad.stderr
