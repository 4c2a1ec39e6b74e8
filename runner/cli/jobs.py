"""``runner jobs``: list, show, retry, abort and purge the jobs of the queues a worker.toml names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import click

from runner.cli.exits import fail
from runner.cli.loading import config_argument
from runner.cli.ops import Ops, age, echo_err, open_ops, progress, table, when, when_dt
from runner.engine.browse import error_text, traceback_of
from runner.engine.client import RunnerRedis
from runner.engine.inspection import STATUSES, JobRow, RowStatus, find_job, queue_jobs, results, undecoded_arguments
from runner.engine.job import Job
from runner.engine.steering import purge_queue, requeue_failed
from runner.engine.utils import args_to_string, timestamp_ms
from runner.errors import RunnerError
from runner.text import plural


@dataclass
class _State:
    config_file: Path
    verbose: bool
    ops: Ops | None = None

    def open(self) -> Ops:
        if self.ops is None:
            self.ops = open_ops(self.config_file, self.verbose)
        return self.ops


@click.group("jobs")
@config_argument
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.pass_context
def jobs(ctx: click.Context, config_file: Path, verbose: bool) -> None:
    """List, show, retry, abort and purge jobs."""
    ctx.obj = _State(config_file, verbose)


def _state() -> _State:
    return cast(_State, click.get_current_context().find_object(_State))


def call_text(row: JobRow, full: bool = False) -> str:
    if row.error is not None:
        return f"? ({row.error})"
    if full:
        parts = [repr(a) for a in row.args] + [f"{k}={v!r}" for k, v in sorted(row.kwargs.items())]
        return f"{row.function}({', '.join(parts)})"
    return f"{row.function}({args_to_string(row.args, row.kwargs)})"


# -- list ---------------------------------------------------------------------------------------------------------


@jobs.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this state.")
@click.option("--function", "function_name", metavar="NAME", help="Only jobs of this function.")
@click.option("--queue", "queue_name", metavar="NAME", help="Only this queue of the file.")
@click.option(
    "--limit", metavar="N", type=click.IntRange(min=0), default=50, show_default=True, help="At most N jobs; 0: all."
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_jobs(
    status: str | None, function_name: str | None, queue_name: str | None, limit: int, output_format: str
) -> None:
    """List jobs: queued, deferred and in progress in queue order, then stored results, newest first."""
    ops = _state().open()
    queues = ops.check_queue(queue_name)

    rows, more = ops.run(lambda pool: _collect(pool, ops, queues, status, function_name, limit))
    if output_format == "json":
        click.echo(json.dumps([_row_dict(r) for r in rows], default=repr))
    elif rows:
        lines = [["ID", "STATUS", "QUEUE", "TRY", "ENQUEUED (UTC)", "JOB"]]
        for r in rows:
            lines.append([r.job_id, r.status, r.queue or "?", str(r.job_try or "-"), when(r.enqueue_ms), call_text(r)])
        for line in table(lines, right=frozenset({3})):
            click.echo(line)
    else:
        echo_err("no jobs match")
    if more:
        echo_err(f"showing the first {plural(limit, 'job')}; --limit 0 shows all")


async def _collect(
    pool: RunnerRedis, ops: Ops, queues: list[str], status: str | None, function_name: str | None, limit: int
) -> tuple[list[JobRow], bool]:
    """Matching jobs, at most ``limit`` (0: all), and whether more matched."""
    found: list[JobRow] = []

    def take(row: JobRow) -> bool:
        if (status is None or row.status == status) and function_name in (None, row.function):
            found.append(row)
        return limit > 0 and len(found) > limit

    if status in (None, RowStatus.QUEUED, RowStatus.DEFERRED, RowStatus.IN_PROGRESS):
        for queue in queues:
            async for row in queue_jobs(pool, queue, deserializer=ops.loads):
                if take(row):
                    return found[:limit], True
    if status in (None, RowStatus.COMPLETE, RowStatus.FAILED):
        seen = {r.job_id for r in found}
        for queue in queues:
            for row in await results(pool, deserializer=ops.loads, queue_name=queue):
                if row.queue is None and len(queues) == 1:
                    row.queue = queue
                if row.job_id not in seen and take(row):
                    return found[:limit], True
                seen.add(row.job_id)
    return found, False


def _row_dict(row: JobRow) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.job_id,
        "status": row.status,
        "queue": row.queue,
        "function": row.function,
        "args": list(row.args),
        "kwargs": row.kwargs,
        "try": row.job_try,
        "enqueued": when(row.enqueue_ms) if row.enqueue_ms is not None else None,
    }
    if row.score is not None and row.status in (RowStatus.QUEUED, RowStatus.DEFERRED):
        data["due"] = when(row.score)
    if row.result is not None:
        data["started"] = when_dt(row.result.start_time)
        data["finished"] = when_dt(row.result.finish_time)
        if row.result.success:
            data["result"] = row.result.result
        else:
            data["error"] = error_text(row.result.result)
            trace = traceback_of(row.result.result)
            if trace:
                data["traceback"] = trace
    if row.error is not None:
        data["problem"] = row.error
    return data


# -- show ---------------------------------------------------------------------------------------------------------


@jobs.command("show")
@click.argument("job_id", metavar="ID")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def show(job_id: str, output_format: str) -> None:
    """One job: arguments, tries, times, and its result or error with the traceback."""
    ops = _state().open()
    row = ops.run(lambda pool: find_job(pool, job_id, ops.queues, deserializer=ops.loads))
    if row is None:
        fail(
            f"no job {job_id} in queue{'s' if len(ops.queues) > 1 else ''} {', '.join(ops.queues)} and no stored "
            "result (it may have finished with keep_result = 0, or its result expired)"
        )
    if output_format == "json":
        click.echo(json.dumps(_row_dict(row), default=repr, indent=2))
        return
    lines = [("status", row.status.replace("_", " ")), ("queue", row.queue or "?"), ("job", call_text(row, full=True))]
    lines.append(("tries", str(row.job_try or 0)))
    lines.append(("enqueued", f"{when(row.enqueue_ms)} UTC"))
    if row.score is not None and row.status in (RowStatus.QUEUED, RowStatus.DEFERRED):
        wait = (row.score - timestamp_ms()) / 1000
        lines.append(("due", f"{when(row.score)} UTC ({'in ' + age(wait) if wait > 0 else 'now'})"))
    result = row.result
    trace = None
    if result is not None:
        lines.append(("started", f"{when_dt(result.start_time)} UTC"))
        lines.append(("finished", f"{when_dt(result.finish_time)} UTC"))
        lines.append(("took", age((result.finish_time - result.start_time).total_seconds())))
        if result.success:
            lines.append(("result", repr(result.result)))
        else:
            lines.append(("error", error_text(result.result)))
            trace = traceback_of(result.result)
    click.echo(f"job {row.job_id}")
    for name, value in lines:
        click.echo(f"  {name:<9} {value}")
    if trace:
        click.echo("  traceback:")
        for line in trace.rstrip("\n").splitlines():
            click.echo(f"    {line}")


# -- retry --------------------------------------------------------------------------------------------------------


@jobs.command("retry")
@click.argument("job_id", metavar="ID", required=False)
@click.option("--all-failed", is_flag=True, help="Every failed job with a stored result.")
@click.option("--queue", "queue_name", metavar="NAME", help="With --all-failed: only this queue.")
@click.option("--function", "function_name", metavar="NAME", help="With --all-failed: only this function.")
def retry(job_id: str | None, all_failed: bool, queue_name: str | None, function_name: str | None) -> None:
    """Enqueue a failed job again (same id, same arguments, fresh tries); its failed result is removed."""
    if (job_id is None) == (not all_failed):
        raise click.UsageError("give a job ID or --all-failed (not both)")
    ops = _state().open()
    queues = ops.check_queue(queue_name)

    def target_queue(row: JobRow) -> str:
        if row.queue is not None:
            return row.queue
        if len(queues) == 1:
            return queues[0]
        raise RunnerError(f"job {row.job_id}'s result names no queue; choose one with --queue")

    async def one(pool: RunnerRedis) -> str:
        assert job_id is not None
        row = await find_job(pool, job_id, ops.queues, deserializer=ops.loads)
        if row is None:
            raise RunnerError(f"no job {job_id} and no stored result; a failed job can be retried while it is kept")
        if row.status != RowStatus.FAILED:
            state = row.status.replace("_", " ")
            raise RunnerError(f"job {job_id} is {state}, not failed; only failed jobs can be retried")
        if row.error is not None:
            raise RunnerError(f"job {job_id} cannot be retried: its result cannot be read ({row.error})")
        queue = target_queue(row)
        if not await requeue_failed(
            pool, row, queue, serializer=ops.dumps, deserializer=ops.loads, expires_extra_ms=_extra(ops, queue)
        ):
            raise RunnerError(f"job {job_id} changed while it was retried (a new job took its id); nothing was done")
        return f"job {job_id} queued again on {queue}"

    async def every(pool: RunnerRedis) -> str:
        failed: list[JobRow] = []
        for queue in queues:
            for row in await results(pool, deserializer=ops.loads, queue_name=queue):
                if row.status == RowStatus.FAILED and row.error is None and function_name in (None, row.function):
                    failed.append(row)
        undecoded = [row for row in failed if undecoded_arguments(row)]
        failed = [row for row in failed if not undecoded_arguments(row)]
        done = skipped = 0
        with progress(len(failed), "retrying failed jobs") as advance:
            for row in failed:
                queue = target_queue(row)
                ok = await requeue_failed(
                    pool, row, queue, serializer=ops.dumps, deserializer=ops.loads, expires_extra_ms=_extra(ops, queue)
                )
                done, skipped = done + ok, skipped + (not ok)
                advance(1)
        text = f"queued {plural(done, 'failed job')} again"
        text += f" ({skipped} changed meanwhile and were left alone)" if skipped else ""
        return text + _undecoded_note(undecoded)

    click.echo(ops.run(every if all_failed else one))


def _undecoded_note(rows: list[JobRow]) -> str:
    if not rows:
        return ""
    return (
        f"; {plural(len(rows), 'job')} left alone: their arguments hold classes that are not unpickled here "
        f"({rows[0].job_id}: {undecoded_arguments(rows[0])})"
    )


def _extra(ops: Ops, queue: str) -> int:
    return int(ops.option(queue, "expires_extra_ms"))


# -- abort --------------------------------------------------------------------------------------------------------


@jobs.command("abort")
@click.argument("job_id", metavar="ID")
@click.option(
    "--timeout",
    metavar="SECONDS",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="How long to wait for the job to end.",
)
def abort(job_id: str, timeout: float) -> None:
    """Abort a queued, deferred or running job (its queue needs allow_abort_jobs = true)."""
    ops = _state().open()

    async def go(pool: RunnerRedis) -> str:
        row = await find_job(pool, job_id, ops.queues, deserializer=ops.loads)
        if row is None:
            raise RunnerError(f"no job {job_id} in {', '.join(ops.queues)}")
        if row.status in (RowStatus.COMPLETE, RowStatus.FAILED):
            raise RunnerError(f"job {job_id} already finished ({row.status}); nothing to abort")
        if row.queue is None:
            raise RunnerError(f"job {job_id} is in none of the file's queues ({', '.join(ops.queues)})")
        if not ops.option(row.queue, "allow_abort_jobs"):
            raise RunnerError(
                f"queue {row.queue} does not allow aborting jobs; set allow_abort_jobs = true for it in "
                f"{ops.loaded.document.display_name} and restart its workers"
            )
        job = Job(job_id, pool, _queue_name=row.queue, _deserializer=ops.loads)
        try:
            aborted = await job.abort(timeout=timeout, poll_delay=0.1)
        except TimeoutError:
            raise RunnerError(
                f"abort of job {job_id} requested, but it had not ended after {timeout:g}s; is a worker running?"
            ) from None
        if not aborted:
            raise RunnerError(f"job {job_id} finished before the abort reached it")
        return f"job {job_id} aborted"

    click.echo(ops.run(go))


# -- purge --------------------------------------------------------------------------------------------------------


@jobs.command("purge")
@click.option("--queue", "queue_name", metavar="NAME", help="The queue to empty (needed when the file has several).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(queue_name: str | None, yes: bool) -> None:
    """Delete every queued and deferred job of a queue; running jobs finish normally."""
    ops = _state().open()
    if queue_name is None and len(ops.queues) > 1:
        raise click.UsageError(
            f"{ops.loaded.document.display_name} has queues {', '.join(ops.queues)}; choose one with --queue"
        )
    queue_name = ops.check_queue(queue_name)[0]
    count = ops.run(lambda pool: pool.zcard(queue_name))
    if count == 0:
        click.echo(f"queue {queue_name} has no jobs")
        return
    if not yes:
        click.confirm(f"Delete {plural(count, 'job')} from queue {queue_name}?", abort=True, err=True)

    async def go(pool: RunnerRedis) -> str:
        with progress(count, f"purging {queue_name}") as advance:
            report = await purge_queue(pool, queue_name, on_chunk=advance)
        text = f"deleted {plural(report.deleted, 'job')} from queue {queue_name}"
        if report.running:
            text += f"; {plural(report.running, 'running job')} left to finish"
        return text

    click.echo(ops.run(go))
