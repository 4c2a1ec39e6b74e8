"""The models of worker.toml. Every level forbids unknown keys, so a typo is an error with a suggestion.

Layout of the file::

    max_jobs = 10                 # worker-wide defaults (WorkerOptions), overridable per queue
    serializer = "pickle"         # or [serializer] dumps = "mod:f", loads = "mod:g"
    [redis]                       # RedisConfig
    [hooks]                       # HooksConfig
    [functions.<name>]            # FunctionConfig
    [cron.<name>]                 # CronConfig
    [queues.<queue name>]         # QueueConfig; none declared means one queue "arq:queue" serving everything
    [dashboard]                   # DashboardConfig: `runner dashboard`; its credentials come from the environment
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from runner.config.sources import current_sources
from runner.config.types import (
    Bool,
    ByteSize,
    CronDay,
    CronHour,
    CronMinute,
    CronMonth,
    CronSecond,
    CronWeekday,
    Duration,
    DurationOrZero,
    ImportPath,
    Lease,
    LogLevel,
    RateLimitText,
    RedisUrl,
    TimeZoneName,
)
from runner.engine.keys import default_queue_name
from runner.engine.loops import EventLoopName

DEFAULT_QUEUE = default_queue_name  # the engine's, arq's
SerializerName = Literal["pickle", "json", "msgpack"]
ExecutorName = Literal["async", "thread", "process"]

_STRICT = ConfigDict(extra="forbid", validate_default=False)


class RedisConfig(BaseModel):
    """``[redis]``: where the queues live. The password may stay out of the file (RUNNER_REDIS__PASSWORD)."""

    model_config = _STRICT

    url: RedisUrl = Field("redis://localhost:6379/0", description="Server URL; a password in it is masked in output.")
    username: str | None = Field(None, description="Overrides the user in url.")
    password: SecretStr | None = Field(None, description="Overrides the password in url; best set by env.")
    database: int | None = Field(None, ge=0, description="Overrides the database number in url.")
    ssl: Bool | None = Field(None, description="Use TLS; rediss:// URLs turn it on.")
    ssl_keyfile: str | None = Field(None, description="Client private key file for TLS.")
    ssl_certfile: str | None = Field(None, description="Client certificate file for TLS.")
    ssl_cert_reqs: Literal["none", "optional", "required"] = Field(
        "required", description="Whether the server's TLS certificate must be valid."
    )
    ssl_ca_certs: str | None = Field(None, description="CA bundle file that signs the server's certificate.")
    ssl_ca_data: str | None = Field(None, description="The same CA certificates, as PEM text.")
    ssl_check_hostname: Bool = Field(True, description="Check that the certificate names the host.")
    conn_timeout: Duration = Field(1.0, description="Timeout of one connection attempt.")
    conn_retries: int = Field(5, ge=0, description="Attempts after the first before giving up.")
    conn_retry_delay: DurationOrZero = Field(1.0, description="Pause between attempts.")
    socket_timeout: Duration = Field(
        5.0, description="Longest wait for one reply; a server that stops answering gives an error after it."
    )
    max_connections: int | None = Field(
        None, gt=0, description="Connections per process and queue (default 100); more calls wait for a free one."
    )
    pool_timeout: Duration = Field(10.0, description="Longest wait for a free connection when all are busy.")
    retry_on_timeout: Bool = Field(False, description="Retry a command once when its reply times out.")
    sentinel: Bool = Field(False, description="Connect through Redis Sentinel; list them in sentinels.")
    sentinels: list[str] = Field(default_factory=list, description='Sentinel addresses, "host:port".')
    sentinel_master: str = Field("mymaster", description="The name the sentinels know the primary by.")
    cluster: Bool = Field(
        False,
        description="A Redis Cluster (url names any node): the cluster key layout, which arq cannot read.",
    )

    @model_validator(mode="after")
    def _sentinels_listed(self) -> RedisConfig:
        if self.cluster and self.sentinel:
            raise ValueError("cluster = true and sentinel = true cannot go together; a cluster fails over by itself")
        if self.sentinel and not self.sentinels:
            raise ValueError('sentinel = true needs sentinels = ["host:26379", ...]')
        for address in self.sentinels:
            host, sep, port = address.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f'sentinel address "{address}" must be in format "host:port"')
        return self


class FunctionConfig(BaseModel):
    """``[functions.<name>]``: one job function; unset options fall back to the queue's, then the worker's."""

    model_config = _STRICT

    path: ImportPath = Field(description='The job function (async def or def), as "module:attribute".')
    executor: ExecutorName | None = Field(
        None,
        description='Where it runs: "async" on the event loop (default for async def), "thread" in the thread pool '
        '(default for def), "process" in a job subprocess.',
    )
    timeout: Duration | None = Field(None, description="Time limit of one run; default the queue's job_timeout.")
    max_tries: int | None = Field(None, gt=0, description="Runs a job gets; default the queue's max_tries.")
    keep_result: DurationOrZero | None = Field(None, description="How long its results are kept; 0 keeps none.")
    keep_result_forever: Bool | None = Field(None, description="Keep its results with no expiry.")
    priority: int | None = Field(
        None, ge=-1000, le=1000, description="Default priority of its jobs: higher runs first (-1000..1000; 0 plain)."
    )
    concurrency: int | None = Field(None, gt=0, description="Most of its jobs running at once across all workers.")
    rate_limit: RateLimitText | None = Field(None, description='Most of its jobs started per period: "100/s".')
    group_concurrency: int | None = Field(None, gt=0, description="Most running at once per _group of its jobs.")
    group_rate_limit: RateLimitText | None = Field(None, description='Most started per period per _group: "10/m".')


class CronConfig(BaseModel):
    """``[cron.<name>]``: a job enqueued on a schedule: ``schedule`` or the arq-style fields, never both."""

    model_config = _STRICT

    function: str = Field(description='A name from [functions], or a "module:attribute" path.', min_length=1)
    schedule: str | None = Field(None, description='A cron expression, e.g. "0 8 * * mon-fri".')
    month: CronMonth = Field(None, description="arq-style field: months 1-12 to run in.")
    day: CronDay = Field(None, description="arq-style field: days of the month 1-31.")
    weekday: CronWeekday = Field(None, description='arq-style field: 0-6 from monday, or "mon"..."sun".')
    hour: CronHour = Field(None, description="arq-style field: hours 0-23.")
    minute: CronMinute = Field(None, description="arq-style field: minutes 0-59.")
    second: CronSecond = Field(None, description="arq-style field: seconds 0-59; default 0.")
    tz: TimeZoneName | None = Field(None, description="Time zone of the schedule; default the worker's timezone.")
    queue: str | None = Field(None, description="The queue whose worker runs it; default the first queue.")
    run_at_startup: Bool = Field(False, description="Also enqueue one run each time a worker starts.")
    unique: Bool = Field(True, description="Each run enqueued once however many workers schedule it.")
    catch_up: Bool = Field(False, description="After downtime, enqueue the latest missed run once.")
    job_id: str | None = Field(None, description="A fixed job id, so one run at a time; default one per occurrence.")
    timeout: Duration | None = Field(None, description="Time limit of one run; default the queue's job_timeout.")
    max_tries: int | None = Field(None, gt=0, description="Runs an occurrence gets; default 1.")
    keep_result: DurationOrZero | None = Field(None, description="How long its results are kept; default 0 (none).")
    keep_result_forever: Bool | None = Field(None, description="Keep its results with no expiry.")

    @model_validator(mode="after")
    def _one_kind_of_schedule(self) -> CronConfig:
        fields = [name for name in CRON_TIME_FIELDS if getattr(self, name) is not None]
        if self.schedule is not None and fields:
            raise ValueError(f"use either schedule or {'/'.join(fields)}, not both")
        if self.schedule is None and not fields:
            raise ValueError(
                'needs a schedule ("0 8 * * mon-fri") or at least one of month, day, weekday, hour, minute, second'
            )
        return self


CRON_TIME_FIELDS = ("month", "day", "weekday", "hour", "minute", "second")


class SerializerPaths(BaseModel):
    """``[serializer]``: a custom pair of functions, ``dict -> bytes`` and ``bytes -> dict``."""

    model_config = _STRICT

    dumps: ImportPath = Field(description='"module:attribute" of a function dict -> bytes.')
    loads: ImportPath = Field(description='"module:attribute" of a function bytes -> dict.')


def _serializer_kind(value: Any) -> str:
    return "name" if isinstance(value, str) else "paths"


SerializerSetting = Annotated[
    Annotated[SerializerName, Tag("name")] | Annotated[SerializerPaths, Tag("paths")],
    Discriminator(_serializer_kind),
]


class HooksConfig(BaseModel):
    """``[hooks]``: ``async def hook(ctx)`` functions called around the worker and each job.

    The worker's hooks run on its event loop, so a plain ``def`` is refused; the process hooks run in each job
    subprocess and may be either kind.
    """

    model_config = _STRICT

    on_startup: ImportPath | None = Field(default=None, description="Runs once when a worker starts, before any job.")
    on_shutdown: ImportPath | None = Field(default=None, description="Runs once when a worker stops.")
    on_job_start: ImportPath | None = Field(default=None, description="Runs before each job, with the job's ctx.")
    on_job_end: ImportPath | None = Field(
        default=None, description="Runs after each job, before its outcome is written."
    )
    after_job_end: ImportPath | None = Field(
        default=None, description="Runs after each job, once its outcome is written."
    )
    process_startup: ImportPath | None = Field(
        default=None, description="hook(ctx), def or async def: runs in each job subprocess before its first job."
    )
    process_shutdown: ImportPath | None = Field(
        default=None, description="hook(ctx), def or async def: runs in each job subprocess before it exits."
    )


class QueueConfig(BaseModel):
    """``[queues.<name>]``: one Redis queue, its worker's functions and any option that differs."""

    model_config = _STRICT

    functions: list[str] | None = Field(None, description="Names from [functions]; default all of them.")
    max_jobs: int | None = Field(None, gt=0)
    job_timeout: Duration | None = None
    max_tries: int | None = Field(None, gt=0)
    keep_result: DurationOrZero | None = None
    keep_result_forever: Bool | None = None
    poll_delay: Duration | None = None
    queue_read_limit: int | None = Field(None, gt=0)
    health_check_interval: Duration | None = None
    health_check_key: str | None = None
    allow_abort_jobs: Bool | None = None
    retry_jobs: Bool | None = None
    job_completion_wait: DurationOrZero | None = None
    expires_extra_ms: int | None = Field(None, ge=0)
    max_burst_jobs: int | None = Field(None, ge=-1)
    log_results: Bool | None = None
    timezone: TimeZoneName | None = None
    lease: Lease | None = None
    threads: int | None = Field(None, gt=0, description="Threads for def jobs; default max_jobs.")
    processes: int | None = Field(
        None, gt=0, description='Job subprocesses for executor = "process"; default the cores, at most max_jobs.'
    )
    max_jobs_per_process: int | None = Field(None, gt=0, description="Replace a job subprocess after this many jobs.")
    max_memory_per_process: ByteSize | None = Field(
        None, description='Replace a job subprocess above this resident memory, e.g. "1GiB".'
    )
    global_max_jobs: int | None = Field(None, gt=0, description="Most jobs of the queue running at once, all workers.")
    rate_limit: RateLimitText | None = Field(None, description='Most jobs of the queue started per period: "100/s".')
    shards: int | None = Field(
        None, ge=1, description="Split the queue over this many shards (needs cluster = true; docs/cluster.md)."
    )


class DashboardConfig(BaseModel):
    """``[dashboard]``: the web dashboard (``runner dashboard``).

    Its credentials belong in the environment (``RUNNER_DASHBOARD__TOKEN``, ``RUNNER_DASHBOARD__PASSWORD``) or the
    ``.env`` file beside worker.toml, never in worker.toml itself; without one it only binds a loopback address.
    """

    model_config = _STRICT

    host: str = Field("127.0.0.1", min_length=1, description="Address to bind; a non-loopback one needs credentials.")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    read_only: Bool = Field(False, description="Show everything, change nothing: every action is hidden and refused.")
    refresh: Duration = Field(5.0, description="How often open pages update themselves.")
    username: str = Field("runner", min_length=1, description="The user name for basic auth with password.")
    password: SecretStr | None = Field(None, description="Basic-auth password; from RUNNER_DASHBOARD__PASSWORD only.")
    token: SecretStr | None = Field(None, description="Bearer or login token; from RUNNER_DASHBOARD__TOKEN only.")


# options a queue may override; the rest of WorkerSettings is process-wide
QUEUE_OPTIONS = tuple(name for name in QueueConfig.model_fields if name != "functions")


class WorkerSettings(BaseSettings):
    """The whole worker.toml, after environment overrides.

    Sources, highest precedence first (see :mod:`runner.config.sources`): CLI flags, ``RUNNER_*`` environment
    variables, ``REDIS_URL``, the ``.env`` file beside worker.toml, worker.toml itself, then these defaults.
    """

    model_config = SettingsConfigDict(
        env_prefix="RUNNER_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
        validate_default=False,
        title="worker.toml",
    )

    max_jobs: int = Field(10, gt=0, description="Jobs a worker runs at once.")
    job_timeout: Duration = Field(300.0, description="Default time limit of a job.")
    max_tries: int = Field(5, gt=0, description="Tries before a job is given up.")
    keep_result: DurationOrZero = Field(3600.0, description="How long results are kept; 0 keeps none.")
    keep_result_forever: Bool = Field(False, description="Keep results with no expiry.")
    poll_delay: Duration = Field(0.5, description="Longest an idle worker waits before it looks at the queue again.")
    queue_read_limit: int | None = Field(
        None, gt=0, description="Most jobs claimed in one round trip; default max(max_jobs * 5, 100)."
    )
    health_check_interval: Duration = Field(3600.0, description="How often a worker writes its health records.")
    health_check_key: str | None = Field(
        None, description='Key of the arq health record; default "<queue>:health-check".'
    )
    allow_abort_jobs: Bool = Field(False, description="Cancel a running job when a client aborts it.")
    retry_jobs: Bool = Field(True, description="Honour Retry and requeue jobs a stop cancelled; false: they fail.")
    job_completion_wait: DurationOrZero = Field(0.0, description="Grace time for running jobs on shutdown.")
    expires_extra_ms: int = Field(86_400_000, ge=0, description="A queued job expires this long after its time.")
    max_burst_jobs: int = Field(-1, ge=-1, description="In burst mode stop after this many jobs; -1 no limit.")
    log_results: Bool = Field(True, description="Show return values in the job log lines.")
    timezone: TimeZoneName | None = Field(None, description="Time zone of cron schedules that name none; default UTC.")
    lease: Lease = Field(
        10.0, description="A claimed job runs again at most this long after its worker died (1s at least)."
    )
    threads: int | None = Field(None, gt=0, description="Threads for def jobs; default max_jobs.")
    processes: int | None = Field(
        None, gt=0, description='Job subprocesses for executor = "process"; default the cores, at most max_jobs.'
    )
    max_jobs_per_process: int | None = Field(
        None, gt=0, description="Replace a worker process or job subprocess after this many jobs; default never."
    )
    max_memory_per_process: ByteSize | None = Field(
        None, description='Replace a worker process or job subprocess above this resident memory, e.g. "1GiB".'
    )
    global_max_jobs: int | None = Field(
        None, gt=0, description="Most jobs of a queue running at once across all its workers; default no cap."
    )
    rate_limit: RateLimitText | None = Field(
        None, description='Most jobs of a queue started per period across all its workers: "100/s", "600/m", "5/h".'
    )
    shards: int = Field(
        1,
        ge=1,
        description="Shards a queue is split over, each its own hash slot on a cluster (needs cluster = true).",
    )
    loop_stall_threshold: DurationOrZero = Field(
        1.0, description="Warn when something blocks the event loop this long; 0 turns the watchdog off."
    )
    event_loop: EventLoopName = Field(
        "auto",
        description='The loop runner start runs the workers on: "auto" is uvloop when it is installed, else '
        'asyncio\'s; "asyncio"; "uvloop" (pip install "runner-jobs[uvloop]").',
    )
    log_level: LogLevel = Field(
        "info", description="Level of the lines runner start logs, its own and those of job code (--log-level)."
    )
    burst: Bool = Field(False, description="Stop when the queue is empty (runner start --burst).")
    serializer: SerializerSetting = Field("pickle", description='"pickle", "json", "msgpack", or a [serializer] pair.')
    signing_key: SecretStr | None = Field(
        None,
        description="HMAC key that signs every payload; only from the environment (RUNNER_SIGNING_KEY). "
        "Unsigned or wrongly signed jobs fail unrun; arq cannot read signed jobs.",
    )
    redis: RedisConfig = Field(default_factory=lambda: RedisConfig.model_validate({}))
    hooks: HooksConfig = Field(default_factory=lambda: HooksConfig())
    functions: dict[str, FunctionConfig] = Field(default_factory=dict)
    cron: dict[str, CronConfig] = Field(default_factory=dict)
    queues: dict[str, QueueConfig] = Field(
        default_factory=dict, description=f'Named queues; none means one queue "{DEFAULT_QUEUE}" serving everything.'
    )
    dashboard: DashboardConfig = Field(default_factory=lambda: DashboardConfig.model_validate({}))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return current_sources(settings_cls, init_settings)

    def queue_shards(self) -> dict[str, int]:
        """The queues split over more than one shard, with their shard counts (``RedisSettings.shards``)."""
        found = {}
        for queue in self.queue_names():
            entry = self.queues.get(queue)
            shards = entry.shards if entry is not None and entry.shards is not None else self.shards
            if shards > 1:
                found[queue] = shards
        return found

    def queue_names(self) -> list[str]:
        """The queues this file runs, in file order."""
        return list(self.queues) or [DEFAULT_QUEUE]
