"""What a dashboard needs to know: where Redis is, which queues it shows, how jobs are serialized, its cron jobs,
and who may use it. Built from a worker.toml (``from_config``) or given piece by piece (``dashboard_app(...)``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from runner.engine import keys
from runner.engine.connection import RedisSettings
from runner.engine.cron import CronJob, resolve_tz
from runner.engine.cron_schedule import Schedule
from runner.engine.serializers import Deserializer, Serializer

DEFAULT_LEASE_MS = 10_000
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class QueueInfo:
    """One queue the dashboard shows, with the worker options that change what it reads or may do."""

    name: str
    lease_ms: int = DEFAULT_LEASE_MS
    allow_abort_jobs: bool = False
    expires_extra_ms: int = keys.expires_extra_ms_default
    health_check_key: str | None = None
    functions: tuple[str, ...] = ()


@dataclass(frozen=True)
class CronInfo:
    """One cron job: its schedule, the zone that schedule is read in, and the queue it is enqueued on."""

    name: str
    function: str
    schedule: Schedule
    zone: tzinfo
    queue: str


@dataclass(frozen=True)
class Credentials:
    """Who may use the dashboard: a bearer/login token, a basic-auth user and password, or (None) anyone."""

    token: str | None = None
    username: str = "runner"
    password: str | None = None

    @property
    def required(self) -> bool:
        return self.token is not None or self.password is not None


@dataclass
class DashboardOptions:
    """Everything ``dashboard_app`` is built from."""

    redis_settings: RedisSettings
    queues: list[QueueInfo]
    job_serializer: Serializer | None = None
    job_deserializer: Deserializer | None = None
    cron: list[CronInfo] = field(default_factory=list)
    credentials: Credentials = field(default_factory=Credentials)
    read_only: bool = False
    refresh_s: float = 5.0
    title: str = "runner"
    allowed_hosts: Sequence[str] | None = None  # Host headers accepted; None accepts any (the mounting app decides)

    def queue(self, name: str) -> QueueInfo | None:
        return next((q for q in self.queues if q.name == name), None)

    @property
    def queue_names(self) -> list[str]:
        return [q.name for q in self.queues]


def cron_infos(cron_jobs: Sequence[CronJob], queue: str, default_tz: tzinfo | None = None) -> list[CronInfo]:
    """``CronInfo`` for engine cron jobs scheduled by ``queue``'s worker."""
    infos = []
    for job in cron_jobs:
        function = getattr(job.coroutine, "__qualname__", job.name)
        infos.append(CronInfo(job.name, function, job.schedule, job.zone(default_tz), queue))
    return infos


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the dashboard on this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def from_config(config_file: str | Path, flags: dict[str, Any] | None = None) -> tuple[DashboardOptions, Any]:
    """Options from a worker.toml (with its environment and ``.env``), and the dashboard table it holds.

    Raises:
        ProblemList: the file is missing, invalid, or holds a dashboard secret (those belong in the environment).
        ConfigError: the serializer or the Redis URL cannot be used.
    """
    from runner.config import ProblemList, build_redis_settings, build_serializer, load_settings
    from runner.config.build import cron_schedule, queue_options
    from runner.config.checks import add_import_dir, secret_in_file_problems, served_functions
    from runner.engine.keys import CLUSTER_LAYOUT, shard_queues

    loaded = load_settings(config_file, flags=flags, display_name=str(config_file))
    problems = secret_in_file_problems(loaded)
    if problems:
        raise ProblemList(problems)
    settings = loaded.settings
    add_import_dir(loaded.directory)  # a custom serializer lives beside worker.toml
    dumps, loads = build_serializer(settings)
    queues = []
    for name in settings.queue_names():
        worker = queue_options(settings, name)
        # a queue split over shards shows each shard as a queue of its own (docs/cluster.md)
        for index, shard in enumerate(shard_queues(CLUSTER_LAYOUT, name, worker["shards"])):
            queues.append(
                QueueInfo(
                    name=shard,
                    lease_ms=max(int(worker["lease"] * 1000), 1000),
                    allow_abort_jobs=bool(worker["allow_abort_jobs"]),
                    expires_extra_ms=int(worker["expires_extra_ms"]),
                    health_check_key=worker["health_check_key"] if index == 0 else None,
                    functions=tuple(served_functions(settings, name)),
                )
            )
    cron = []
    first = settings.queue_names()[0]
    for name, entry in settings.cron.items():
        queue = entry.queue or first
        zone = resolve_tz(entry.tz) or resolve_tz(queue_options(settings, queue)["timezone"]) or UTC
        cron.append(CronInfo(name, entry.function, cron_schedule(name, entry), zone, queue))
    board = settings.dashboard
    credentials = Credentials(
        token=board.token.get_secret_value() if board.token else None,
        username=board.username,
        password=board.password.get_secret_value() if board.password else None,
    )
    options = DashboardOptions(
        redis_settings=build_redis_settings(settings.redis, loaded.directory, settings.queue_shards()),
        queues=queues,
        job_serializer=dumps,
        job_deserializer=loads,
        cron=cron,
        credentials=credentials,
        read_only=board.read_only,
        refresh_s=float(board.refresh),
        title=loaded.document.display_name,
    )
    return options, board
