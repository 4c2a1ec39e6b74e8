"""``runner start``: validate a worker.toml, then run one worker per queue in this process.

``runner start app.worker.WorkerSettings`` runs an arq settings class instead (:mod:`runner.cli.arq_compat`).

With ``--processes N`` or ``--watch DIR`` this process becomes a supervisor (:mod:`runner.cli.supervisor`) that
runs the workers in child processes.  Exit codes: 0 clean stop, 1 a worker failed, 2 usage, 3 could not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runner import __version__
from runner.cli.arq_compat import is_settings_path, load_settings_class
from runner.cli.exits import EXIT_BROKEN, EXIT_FAILURE, EXIT_OK, EXIT_START, EXIT_USAGE, fail, handled
from runner.cli.loading import config_argument, load
from runner.cli.logs import json_line, set_level, setup_logging
from runner.cli.recycle import Recycler
from runner.config import LoadedConfig, ProblemList, build_redis_settings, build_workers, check
from runner.config.checks import crons_of_queue, served_functions
from runner.config.types import LOG_LEVELS
from runner.engine import loops
from runner.engine.connection import RedisSettings, create_pool
from runner.engine.executors import ProcessStartError
from runner.engine.launch import create_worker
from runner.engine.worker import Worker
from runner.errors import RunnerError

logger = logging.getLogger("runner.cli")


@click.command("start")
@config_argument
@click.option("--burst/--no-burst", default=None, help="Stop when the queues are empty (overrides burst in the file).")
@click.option("--queue", "queue_name", metavar="NAME", help="Run only this queue of the file.")
@click.option(
    "--processes", metavar="N", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes."
)
@click.option(
    "--watch",
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Restart the workers when a .py file under DIR changes.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging, tracebacks of unexpected errors.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Level of runner's and the jobs' log lines (overrides log_level in the file; default info, -v debug).",
)
@click.option(
    "--metrics-port", metavar="PORT", type=click.IntRange(1, 65535), help="Serve Prometheus metrics on this port."
)
@click.option(
    "--metrics-host",
    metavar="ADDRESS",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics server listens on; 0.0.0.0 for every interface.",
)
# a child of the supervisor: a broken worker.toml or task module exits EXIT_BROKEN, so the supervisor can tell it
# from a Redis that is not there yet
@click.option("--supervised", is_flag=True, hidden=True)
# set by the supervisor on its children: the pipe for its recycling notices, and how many children share the cores
@click.option("--supervisor-fd", type=int, hidden=True)
@click.option("--worker-processes", type=click.IntRange(min=1), default=1, hidden=True)
def start(
    config_file: Path,
    burst: bool | None,
    queue_name: str | None,
    processes: int,
    watch: Path | None,
    verbose: bool,
    log_format: str,
    log_level: str | None,
    metrics_port: int | None,
    metrics_host: str,
    supervised: bool,
    supervisor_fd: int | None,
    worker_processes: int,
) -> None:
    """Run a worker for each queue of a worker.toml (validated first), or an arq WorkerSettings.

    WORKER_TOML may also be an arq settings class, as in `runner start app.worker.WorkerSettings`: it runs as arq
    runs it.
    """
    setup_logging(verbose, log_format, log_level)
    if metrics_port is not None:
        from runner import metrics

        if not metrics.available():
            fail(metrics.INSTALL_HINT, EXIT_START)
        if processes > 1:
            fail("--metrics-port serves one process; run one `runner start --queue …` per port instead", EXIT_USAGE)
    flags: dict[str, Any] = {} if burst is None else {"burst": burst}
    metrics_at = None if metrics_port is None else (metrics_host, metrics_port)
    if is_settings_path(str(config_file)):
        worker, describe = _arq_settings_worker(
            str(config_file), flags, queue_name, verbose, EXIT_BROKEN if supervised else EXIT_START
        )
        if supervisor_fd is None and (processes > 1 or watch is not None):
            from runner.cli.supervisor import ProcessSupervisor

            command = _child_command(config_file, burst, queue_name, verbose, log_format, processes, log_level)
            raise SystemExit(ProcessSupervisor(command + _metrics_flags(metrics_at), processes, watch=watch).run())
        running = run_workers([worker], worker.redis_settings, describe, verbose=verbose, metrics=metrics_at)
        raise SystemExit(loops.run(running, event_loop=worker.event_loop))
    loaded = _load_checked(config_file, flags, verbose, EXIT_BROKEN if supervised else EXIT_START)
    if log_level is None and not verbose:
        set_level(loaded.settings.log_level)  # the flags were read first, so that loading logs in this format
    names = loaded.settings.queue_names()
    if queue_name is not None and queue_name not in names:
        fail(f'queue "{queue_name}" is not in {config_file}; choose one of: {", ".join(names)}', EXIT_USAGE)
    settings = loaded.settings
    recycler = Recycler(settings.max_jobs_per_process, settings.max_memory_per_process, supervisor_fd)
    # recycling needs someone to start the replacement: a plain `runner start` with a limit runs under the
    # supervisor too, with one child
    if supervisor_fd is None and (processes > 1 or watch is not None or recycler.active):
        from runner.cli.supervisor import ProcessSupervisor

        command = _child_command(config_file, burst, queue_name, verbose, log_format, processes, log_level)
        check_command = [*command[: command.index("start")], "validate", str(config_file)]
        command += _metrics_flags(metrics_at)
        raise SystemExit(ProcessSupervisor(command, processes, watch=watch, check_command=check_command).run())
    with handled(EXIT_BROKEN if supervised else EXIT_START, verbose):
        workers = build_workers(
            settings,
            queue_name,
            handle_signals=False,
            base_dir=loaded.directory,
            worker_processes=worker_processes,
            job_budget=recycler.budget if recycler.active else None,
        )
    redis_settings = build_redis_settings(loaded.settings.redis, loaded.directory, loaded.settings.queue_shards())
    describe = functools.partial(banner, loaded, workers, log_format=log_format)
    running = run_workers(workers, redis_settings, describe, verbose=verbose, metrics=metrics_at, recycler=recycler)
    # one loop for every queue's worker: the file's event_loop is process-wide, as log_level is
    raise SystemExit(loops.run(running, event_loop=settings.event_loop))


def _child_command(
    config_file: Path,
    burst: bool | None,
    queue_name: str | None,
    verbose: bool,
    log_format: str,
    processes: int,
    log_level: str | None,
) -> list[str]:
    """The ``runner start`` line a supervisor runs its children with (a worker.toml or a settings class alike)."""
    from runner.cli.supervisor import child_command

    command = child_command(
        config_file, burst=burst, queue=queue_name, verbose=verbose, log_format=log_format, processes=processes
    )
    return command if log_level is None else [*command, "--log-level", log_level]


def _metrics_flags(metrics_at: tuple[str, int] | None) -> list[str]:
    """The child's ``--metrics-port``/``--metrics-host``: under ``--watch`` the one child serves the metrics."""
    return [] if metrics_at is None else ["--metrics-port", str(metrics_at[1]), "--metrics-host", metrics_at[0]]


def _arq_settings_worker(
    target: str, flags: dict[str, Any], queue_name: str | None, verbose: bool, code: int
) -> tuple[Worker, Callable[[str], str]]:
    """The worker an arq settings class describes, and its banner (``runner start app.worker.WorkerSettings``)."""
    with handled(code, verbose):
        settings = load_settings_class(target)
        # runner start handles the signals itself, for every worker it runs
        worker = create_worker(settings, **flags, handle_signals=False)
    if queue_name is not None and queue_name != worker.queue_name:
        fail(f'queue "{queue_name}" is not served by {target}; it serves {worker.queue_name}', EXIT_USAGE)

    def describe(server: str) -> str:
        cron_names = {job.name for job in worker.cron_jobs}
        functions = ", ".join(name for name in worker.functions if name not in cron_names)
        crons = ", ".join(f"{job.name} ({job.describe()})" for job in worker.cron_jobs) or "none"
        return (
            f"runner {__version__}: {target} (arq settings), Redis {worker.redis_settings.describe()} ({server})\n"
            f"  queue {worker.queue_name}: functions {functions or 'none'}; cron jobs {crons}; "
            f"max_jobs {worker.max_jobs}{', burst' if worker.burst else ''}"
        )

    return worker, describe


def _load_checked(config_file: Path, flags: dict[str, Any], verbose: bool, code: int) -> LoadedConfig:
    with handled(code, verbose):
        try:
            loaded = load(config_file, flags)
        except ProblemList as exc:
            problems = exc.problems
        else:
            problems = check(loaded)
        if problems:
            raise ProblemList(problems)
    return loaded


def banner(loaded: LoadedConfig, workers: list[Worker], server: str, log_format: str = "text") -> str:
    """What ``runner start`` prints before it runs: the file, the Redis it reached and every queue's contents.

    Under ``--log-format json`` it is one JSON line of the log format, the queues as fields.
    """
    settings = loaded.settings
    where = workers[0].redis_settings.describe() if workers else ""
    first = f"runner {__version__}: {loaded.document.display_name}, Redis {where} ({server})"
    queues = []
    lines = [first]
    for worker in workers:
        functions = served_functions(settings, worker.queue_name)
        crons = {name: _schedule_text(settings.cron[name]) for name in crons_of_queue(settings, worker.queue_name)}
        cron_text = ", ".join(f"{name} ({schedule})" for name, schedule in crons.items()) or "none"
        lines.append(
            f"  queue {worker.queue_name}: functions {', '.join(functions) or 'none'}; cron jobs {cron_text}; "
            f"max_jobs {worker.max_jobs}{', burst' if worker.burst else ''}"
        )
        queues.append(
            {"queue": worker.queue_name, "functions": functions, "cron": crons, "max_jobs": worker.max_jobs}
            | {"burst": worker.burst}
        )
    if log_format == "json":
        details = {"version": __version__, "file": loaded.document.display_name, "redis": where, "server": server}
        return json_line("runner.cli", first, event="banner", **details, queues=queues)
    return "\n".join(lines)


def _schedule_text(entry: Any) -> str:
    if entry.schedule is not None:
        return str(entry.schedule)
    fields = ("month", "day", "weekday", "hour", "minute", "second")
    return " ".join(f"{name}={getattr(entry, name)}" for name in fields if getattr(entry, name) is not None)


async def reach_redis(settings: RedisSettings) -> str:
    """Connect once and describe the server (``valkey 8.1.1``), so the banner says what was reached.

    Raises:
        RunnerError: the server could not be reached.
    """
    try:
        pool = await create_pool(settings)
    except RunnerError:
        raise
    except Exception as exc:
        raise RunnerError(f"Could not reach Redis at {settings.describe()}: {exc}") from exc
    try:
        info = await pool.info("server")
    finally:
        await pool.aclose()
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}"
    return f"redis {info.get('redis_version', '?')}"


async def run_workers(
    workers: list[Worker],
    redis_settings: RedisSettings,
    describe: Callable[[str], str],
    *,
    verbose: bool = False,
    metrics: tuple[str, int] | None = None,
    recycler: Recycler | None = None,
) -> int:
    """Run every worker until stopped; SIGINT/SIGTERM ask each to stop, a second signal stops at once.

    ``describe`` turns the server's name (``valkey 8.1.1``) into the banner printed first; ``metrics`` is the
    ``(host, port)`` to serve Prometheus metrics on, if any.

    Returns:
        The exit code: 0 after a clean stop (or a retirement, see runner/cli/recycle.py), 1 when a worker failed,
        3 when Redis could not be reached or job processes could not start.
    """
    try:
        server = await reach_redis(redis_settings)
    except RunnerError as exc:
        if verbose:
            logger.exception("could not reach Redis")
        click.echo(f"Error: {exc}", err=True)
        return EXIT_START
    click.echo(describe(server))
    exporter = None
    if metrics is not None and workers:
        from runner.metrics import MetricsExporter

        host, port = metrics
        exporter = MetricsExporter(port, workers, workers[0].redis_settings, host=host)
        try:
            await exporter.start()
        except RunnerError as exc:
            click.echo(f"Error: {exc}", err=True)
            return EXIT_START
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        logger.info("received %s, %s", signal.Signals(signum).name, "stopping" if signals == 1 else "stopping at once")
        for worker in workers:
            worker.request_stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    background: list[asyncio.Task[None]] = []
    if recycler is not None and recycler.active:
        if exporter is not None:
            # the replacement serves the port: free it as soon as this process retires
            stopping = exporter.stop
            recycler.on_retire(lambda: background.append(asyncio.ensure_future(stopping())))
            exporter = None
        background.append(asyncio.create_task(recycler.watch_memory()))
    try:
        return await _run_all(workers, verbose)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if exporter is not None:
            await exporter.stop()


async def _run_all(workers: list[Worker], verbose: bool) -> int:
    """Run the workers to their end; one that fails asks the others to stop. The exit code."""
    tasks = {asyncio.create_task(_run_and_close(worker), name=worker.queue_name): worker for worker in workers}
    code = EXIT_OK
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            failure = task.exception()
            if failure is None:
                continue
            code = EXIT_START if isinstance(failure, ProcessStartError) else EXIT_FAILURE
            if verbose:
                logger.error("worker for queue %s failed", task.get_name(), exc_info=failure)
            click.echo(
                f"Error: worker for queue {task.get_name()} failed: {type(failure).__name__}: {failure}", err=True
            )
            for other in pending:
                tasks[other].request_stop()
    return code


async def _run_and_close(worker: Worker) -> None:
    try:
        await worker.async_run()
    finally:
        await worker.close()  # as arq's async_run, runner's leaves close() to its caller
