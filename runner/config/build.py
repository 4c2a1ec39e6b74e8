"""Engine objects from validated settings: ``RedisSettings``, the serializer pair and one ``Worker`` per queue."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from runner.config.checks import crons_of_queue, served_functions
from runner.config.cronbridge import make_cron
from runner.config.models import CRON_TIME_FIELDS, QUEUE_OPTIONS, CronConfig, RedisConfig, WorkerSettings
from runner.config.types import embedded_data_dir
from runner.engine.budget import JobBudget
from runner.engine.connection import RedisSettings
from runner.engine.cron_schedule import Schedule
from runner.engine.executors import default_processes, default_threads
from runner.engine.functions import Function, func
from runner.engine.serializers import Deserializer, Serializer, get_serializer, sign_serializer
from runner.engine.utils import import_string
from runner.errors import ConfigError

if TYPE_CHECKING:
    from runner.engine.worker import Worker

HOOKS = ("on_startup", "on_shutdown", "on_job_start", "on_job_end", "after_job_end")
PROCESS_HOOKS = ("process_startup", "process_shutdown")  # run in job subprocesses, which import them by path


def build_redis_settings(
    config: RedisConfig, base_dir: Path | None = None, shards: dict[str, int] | None = None
) -> RedisSettings:
    """``RedisSettings`` from ``[redis]``: the URL first, then every option set beside it; ``shards`` the queues
    split over shards (``WorkerSettings.queue_shards()``), so enqueues and job look-ups find each job's shard.

    A relative ``embedded://DIR`` is resolved against ``base_dir``, the worker.toml's directory, so every command
    that reads the file finds the same embedded server wherever it is run from.

    Raises:
        ConfigError: the URL cannot be parsed.
    """
    settings = RedisSettings.from_dsn(config.url)
    if settings.embedded_dir is not None:
        settings = replace(settings, embedded_dir=embedded_data_dir(config.url, base_dir))
    overrides: dict[str, Any] = {
        "ssl_cert_reqs": config.ssl_cert_reqs,
        "ssl_check_hostname": config.ssl_check_hostname,
        "conn_timeout": config.conn_timeout,
        "conn_retries": config.conn_retries,
        "conn_retry_delay": config.conn_retry_delay,
        "socket_timeout": config.socket_timeout,
        "pool_timeout": config.pool_timeout,
        "retry_on_timeout": config.retry_on_timeout,
        "sentinel": config.sentinel,
        "sentinel_master": config.sentinel_master,
        "cluster": config.cluster,
        "shards": dict(shards or {}),
    }
    optional = {
        "username": config.username,
        "password": config.password.get_secret_value() if config.password else None,
        "database": config.database,
        "ssl": config.ssl,
        "ssl_keyfile": config.ssl_keyfile,
        "ssl_certfile": config.ssl_certfile,
        "ssl_ca_certs": config.ssl_ca_certs,
        "ssl_ca_data": config.ssl_ca_data,
        "max_connections": config.max_connections,
    }
    overrides.update({key: value for key, value in optional.items() if value is not None})
    if config.sentinel:
        hosts = []
        for address in config.sentinels:
            host, _, port = address.rpartition(":")
            hosts.append((host, int(port)))
        overrides["host"] = hosts
    return replace(settings, **overrides)


def build_serializer(settings: WorkerSettings) -> tuple[Serializer, Deserializer]:
    """The ``(dumps, loads)`` pair the file names, signed when a ``signing_key`` is set.

    Raises:
        ConfigError: an unknown name, msgpack not installed, or an import path that does not resolve.
    """
    spec = settings.serializer
    if isinstance(spec, str):
        dumps, loads = get_serializer(spec)
    else:
        dumps, loads = import_string(spec.dumps), import_string(spec.loads)
    if settings.signing_key is not None:
        try:
            return sign_serializer(settings.signing_key.get_secret_value(), dumps, loads)
        except ValueError as exc:
            raise ConfigError(f"signing_key: {exc}.") from None
    return dumps, loads


def _hooks(settings: WorkerSettings) -> dict[str, Any]:
    hooks = {name: (import_string(path) if (path := getattr(settings.hooks, name)) else None) for name in HOOKS}
    hooks.update({name: getattr(settings.hooks, name) for name in PROCESS_HOOKS})
    return hooks


def queue_options(settings: WorkerSettings, queue: str) -> dict[str, Any]:
    """The worker options of ``queue``: the file's worker-wide values with the queue's overrides on top."""
    options = {name: getattr(settings, name) for name in QUEUE_OPTIONS}
    if queue in settings.queues:
        for name in QUEUE_OPTIONS:
            value = getattr(settings.queues[queue], name)
            if value is not None:
                options[name] = value
    return options


def build_functions(settings: WorkerSettings, queue: str) -> list[Function]:
    """The ``func(...)`` objects of the functions ``queue`` serves."""
    functions = []
    for name in served_functions(settings, queue):
        entry = settings.functions[name]
        functions.append(
            func(
                entry.path,
                name=name,
                timeout=entry.timeout,
                keep_result=entry.keep_result,
                keep_result_forever=entry.keep_result_forever,
                max_tries=entry.max_tries,
                executor=entry.executor,
                priority=entry.priority,
                concurrency=entry.concurrency,
                rate_limit=entry.rate_limit,
                group_concurrency=entry.group_concurrency,
                group_rate_limit=entry.group_rate_limit,
            )
        )
    return functions


def cron_schedule(name: str, entry: CronConfig) -> Schedule:
    """The engine's schedule for ``[cron.<name>]`` (no task module is imported)."""
    if entry.schedule is not None:
        return Schedule.from_crontab(entry.schedule)
    fields = {
        field: set(value) if isinstance(value, list) else value
        for field in CRON_TIME_FIELDS
        if (value := getattr(entry, field)) is not None
    }
    return Schedule.from_fields(label=f"cron.{name}", **fields)


def build_crons(settings: WorkerSettings, queue: str) -> list[Any]:
    """The engine cron jobs scheduled by the worker of ``queue``."""
    jobs = []
    for name in crons_of_queue(settings, queue):
        entry = settings.cron[name]
        target = entry.function
        # a cron entry naming a [functions] table runs where that function runs
        if ":" in target:
            path, executor = target, None
        else:
            path, executor = settings.functions[target].path, settings.functions[target].executor
        try:
            jobs.append(make_cron(name, entry, path, executor))
        except (ValueError, TypeError, RuntimeError) as exc:
            raise ConfigError(f"cron.{name}: {exc}") from exc
    return jobs


def build_workers(
    settings: WorkerSettings,
    queue: str | None = None,
    *,
    handle_signals: bool = False,
    base_dir: Path | None = None,
    worker_processes: int = 1,
    job_budget: JobBudget | None = None,
) -> list[Worker]:
    """One engine ``Worker`` per queue of the file (or only ``queue``), ready for ``async_run()``.

    ``worker_processes`` is how many worker processes share the machine (``runner start --processes N``), so the
    default number of job subprocesses is each one's share of the cores. ``job_budget`` is shared by the workers
    of a process that is recycled after a number of jobs (runner/cli/recycle.py).

    Raises:
        ConfigError: ``queue`` is not declared, or an import path does not resolve.
    """
    from runner.engine.worker import Worker  # redis-py and the worker only when workers are built

    names = settings.queue_names()
    if queue is not None:
        if queue not in names:
            raise ConfigError(f'Queue "{queue}" is not in the file; choose one of: {", ".join(names)}.')
        names = [queue]
    redis_settings = build_redis_settings(settings.redis, base_dir, settings.queue_shards())
    dumps, loads = build_serializer(settings)
    hooks = _hooks(settings)
    workers = []
    for name in names:
        options = queue_options(settings, name)
        zone = options.pop("timezone")
        if options["threads"] is None:
            options["threads"] = default_threads(options["max_jobs"])
        if options["processes"] is None:
            options["processes"] = default_processes(options["max_jobs"], worker_processes)
        workers.append(
            Worker(
                build_functions(settings, name),
                queue_name=name,
                cron_jobs=build_crons(settings, name),
                redis_settings=redis_settings,
                burst=settings.burst,
                handle_signals=handle_signals,
                job_serializer=dumps,
                job_deserializer=loads,
                timezone=ZoneInfo(zone) if zone else None,
                loop_stall_threshold=settings.loop_stall_threshold or None,
                event_loop=settings.event_loop,
                job_budget=job_budget,
                **hooks,
                **options,
            )
        )
    return workers
