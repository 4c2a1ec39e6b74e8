"""``runner enqueue``: put one job (or a file of them) on a queue from the shell, and optionally wait for it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO, Any

import click

from runner.cli.loading import config_argument
from runner.cli.ops import Ops, open_ops, progress, verbose_option
from runner.config.checks import served_functions
from runner.config.types import parse_duration
from runner.engine.client import JobSpec, RunnerRedis
from runner.engine.job import Job, JobStatus
from runner.errors import RunnerError
from runner.text import plural

BULK_CHUNK = 500
_JSON_START = tuple('{["')


def parse_value(text: str, what: str) -> Any:
    """A JSON value; text that is not JSON and does not look like it is taken as a plain string.

    Raises:
        click.BadParameter: the text starts like JSON (``{``, ``[``, ``"``) but is not valid JSON.
    """
    try:
        return json.loads(text)
    except ValueError as exc:
        if text.lstrip().startswith(_JSON_START):
            raise click.BadParameter(f"{text!r} is not valid JSON ({exc})", param_hint=what) from None
        return text


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise click.BadParameter(f'{value!r} is not a duration; use 30, "30s", "5m" or "1h30m"') from None
    if seconds < 0:
        raise click.BadParameter(f"{value!r} must not be negative")
    return seconds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _EnqueueCommand(click.Command):
    """``--wait`` takes SECONDS only when a number follows it, so ``--wait add 2 40`` waits for ``add(2, 40)``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        fixed: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":
                fixed += args[index:]
                break
            following = args[index + 1] if index + 1 < len(args) else None
            if arg == "--wait" and (following is None or not _is_number(following)):
                arg = "--wait=inf"
            fixed.append(arg)
        return super().parse_args(ctx, fixed)


@click.command("enqueue", cls=_EnqueueCommand)
@config_argument
@click.argument("function")
@click.argument("args", nargs=-1, metavar="[ARGS]...")
@click.option("--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments as a JSON object.")
@click.option("--job-id", metavar="ID", help="A custom job id; refused while a job with it is queued or kept.")
@click.option("--defer-by", metavar="DURATION", callback=_duration, help='Run no earlier than this from now: 30, "5m".')
@click.option("--queue", "queue_name", metavar="NAME", help="The queue (default: the file's first queue).")
@click.option(
    "--wait",
    metavar="[SECONDS]",
    type=click.FloatRange(min=0),
    help="Wait for the result and print it (or the error); at most SECONDS when a number follows.",
)
@click.option(
    "--bulk",
    "bulk_file",
    metavar="FILE",
    type=click.File("r"),
    help='Enqueue one job per line of FILE ("-": stdin): a JSON array of args, or {"args": [...], "kwargs": {...}}.',
)
@verbose_option
def enqueue(
    config_file: Path,
    function: str,
    args: tuple[str, ...],
    kwargs_json: str | None,
    job_id: str | None,
    defer_by: float | None,
    queue_name: str | None,
    wait: float | None,
    bulk_file: IO[str] | None,
    verbose: bool,
) -> None:
    """Enqueue a job from the shell; --wait prints its result.

    Each of ARGS is a JSON value (1, 2.5, true, null, "text", [1, 2], {"a": 1}); other text is taken as a string.
    """
    ops = open_ops(config_file, verbose)
    queue = ops.check_queue(queue_name)[0]
    served = served_functions(ops.loaded.settings, queue)
    if function not in served:
        raise click.UsageError(
            f'function "{function}" is not served by queue {queue}; its functions: {", ".join(served) or "none"}'
        )
    kwargs: dict[str, Any] = {}
    if kwargs_json is not None:
        kwargs = parse_value(kwargs_json, "--kwargs")
        if not isinstance(kwargs, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--kwargs")
    values = [parse_value(text, "ARGS") for text in args]
    if bulk_file is not None:
        if args or kwargs_json or job_id or wait is not None:
            raise click.UsageError("--bulk takes the arguments from the file; give no ARGS, --kwargs, --job-id, --wait")
        specs = _bulk_specs(bulk_file, function, queue, defer_by)
        click.echo(ops.run(lambda pool: _enqueue_bulk(pool, specs, queue)))
        return
    spec = JobSpec(function, values, kwargs, job_id=job_id, queue_name=queue, defer_by=defer_by)
    ops.run(lambda pool: _enqueue_one(pool, ops, spec, wait))


async def _enqueue_one(pool: RunnerRedis, ops: Ops, spec: JobSpec, wait: float | None) -> None:
    job = (await pool.enqueue_many([spec]))[0]
    if job is None:
        raise RunnerError(
            f"job id {spec.job_id} is taken: a job with it is queued, running, or has a kept result; nothing was done"
        )
    click.echo(f"enqueued job {job.job_id} on {spec.queue_name}")
    if wait is None:
        return
    try:
        result = await job.result(timeout=None if math.isinf(wait) else wait, poll_delay=0.2)
    except TimeoutError:
        now = await _still(job, spec.queue_name)
        raise RunnerError(f"job {job.job_id} did not finish within {wait:g}s; {now}") from None
    except RunnerError:
        raise
    except BaseException as exc:  # the job's own exception, rebuilt from its result (CancelledError: aborted)
        message = str(exc)
        raise RunnerError(f"job {job.job_id} failed: {type(exc).__name__}{': ' + message if message else ''}") from None
    try:
        shown = json.dumps(result)
    except (TypeError, ValueError):
        shown = repr(result)
    click.echo(shown)


async def _still(job: Job, queue: str | None) -> str:
    """What a job that did not finish in time is doing now, as the end of a sentence."""
    status = await job.status()
    if status == JobStatus.in_progress:
        return "it is still running, and its result will be kept as usual"
    if status == JobStatus.queued:
        return f"it stays queued on {queue}; is a worker running for it?"
    if status == JobStatus.deferred:
        return "it is deferred: it waits for its time or for a retry, and stays queued"
    if status == JobStatus.complete:
        return "it has just finished; `runner jobs show` has its result"
    return "it is no longer queued and left no result"


def _bulk_specs(stream: IO[str], function: str, queue: str, defer_by: float | None) -> list[JobSpec]:
    specs = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise click.BadParameter(f"line {number} is not JSON ({exc})", param_hint="--bulk") from None
        if isinstance(entry, list):
            args, kwargs = entry, {}
        elif isinstance(entry, dict) and set(entry) <= {"args", "kwargs"}:
            args, kwargs = entry.get("args", []), entry.get("kwargs", {})
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise click.BadParameter(f"line {number}: args must be an array, kwargs an object", param_hint="--bulk")
        else:
            raise click.BadParameter(
                f'line {number} must be a JSON array of args or {{"args": [...], "kwargs": {{...}}}}',
                param_hint="--bulk",
            )
        specs.append(JobSpec(function, args, kwargs, queue_name=queue, defer_by=defer_by))
    return specs


async def _enqueue_bulk(pool: RunnerRedis, specs: list[JobSpec], queue: str) -> str:
    written = 0
    with progress(len(specs), f"enqueueing on {queue}") as advance:
        for start in range(0, len(specs), BULK_CHUNK):
            chunk = specs[start : start + BULK_CHUNK]
            written += sum(job is not None for job in await pool.enqueue_many(chunk))
            advance(len(chunk))
    return f"enqueued {plural(written, 'job')} on {queue}"
