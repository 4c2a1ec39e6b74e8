"""Cron jobs: ``cron(...)`` declares one, ``CronScheduler`` (run by the Worker) enqueues each occurrence once.

Exactly once across any number of workers: every worker's scheduler enqueues every occurrence, under the id
``<name>:<unix ms of the scheduled time>`` (arq's format) and with an idempotency window (``_unique_for``) that
outlives the job, so the first enqueue wins and every later one — even after the job finished — is refused.

Missed occurrences (no worker was running) are not replayed; ``catch_up=True`` enqueues the most recent
missed one when a worker starts, using the last scheduled occurrence recorded under ``runner:cron:last:<name>``
(``scripts/cron_last.lua``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redis.exceptions import RedisError

from runner.engine import scripts
from runner.engine.cron_schedule import FieldValue, Schedule
from runner.engine.executors import ExecutorKind
from runner.engine.functions import Function, default_name, func
from runner.engine.utils import SecondsTimedelta, ms_to_datetime, to_seconds, to_unix_ms
from runner.errors import ConfigError, InvalidArgument, RedisUnavailable

__all__ = [
    "CronJob",
    "CronScheduler",
    "Options",
    "Schedule",
    "cron",
    "next_cron",
    "resolve_tz",
]

logger = logging.getLogger("runner.cron")


def resolve_tz(value: str | tzinfo | None, what: str = "tz") -> tzinfo | None:
    """An IANA zone name (or a tzinfo, or None) as a tzinfo.

    Raises:
        ConfigError: the name is not a known zone.
    """
    if value is None or isinstance(value, tzinfo):
        return value
    if value.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f'{what}: unknown time zone "{value}"; use an IANA name like "Europe/London" or "UTC"'
        ) from None


@dataclass
class CronJob:
    """A job the scheduler enqueues on a schedule; build it with :func:`cron`.

    Its first sixteen fields are arq's ``CronJob``'s, in arq's order (the raw ``month`` … ``microsecond`` values
    as given, None for a crontab schedule). ``next_run`` holds the next occurrence once ``calculate_next`` has
    been called; runner's scheduler keeps its own and never reads it. The Worker registers the job in its
    functions table under ``name`` (it has the attributes of ``Function``).
    """

    name: str
    coroutine: Callable[..., Awaitable[Any]]
    month: FieldValue = None
    day: FieldValue = None
    weekday: FieldValue = None
    hour: FieldValue = None
    minute: FieldValue = None
    second: FieldValue = 0
    microsecond: int = 123_456
    run_at_startup: bool = False
    unique: bool = True
    job_id: str | None = None
    timeout_s: float | None = None
    keep_result_s: float | None = 0.0
    keep_result_forever: bool | None = False
    max_tries: int | None = 1
    next_run: datetime | None = None
    _: KW_ONLY
    # built from the fields above when not given (cron() always gives it)
    schedule: Schedule = None  # type: ignore[assignment]
    tz: tzinfo | None = None
    catch_up: bool = False
    executor: ExecutorKind = "async"
    path: str | None = None  # what a job subprocess imports, for executor "process"

    def __post_init__(self) -> None:
        if self.schedule is None:
            self.schedule = Schedule.from_fields(
                month=self.month,
                day=self.day,
                weekday=self.weekday,
                hour=self.hour,
                minute=self.minute,
                second=self.second,
                microsecond=self.microsecond,
                label=f'cron job "{self.name}"',
            )

    def zone(self, default_tz: tzinfo | None = None) -> tzinfo:
        """The zone this job's schedule is read in: its own, else the worker's, else UTC."""
        return self.tz or default_tz or UTC

    def next_after(self, after: datetime, default_tz: tzinfo | None = None) -> datetime:
        """The first run strictly after ``after`` (aware), in this job's zone (see ``Schedule.next_run``)."""
        return self.schedule.next_run(after, self.zone(default_tz))

    def calculate_next(self, prev_run: datetime) -> None:
        """Set ``next_run`` to the first run after ``prev_run``, on ``prev_run``'s wall clock, as arq does."""
        self.next_run = next_wall_run(self.schedule, prev_run)

    def describe(self) -> str:
        """The schedule for messages and tables: the crontab string or the arq-style fields."""
        return self.schedule.describe()


@dataclass
class Options:
    """arq's bundle of the calendar fields of a cron schedule (``arq.cron.Options``)."""

    month: FieldValue
    day: FieldValue
    weekday: FieldValue
    hour: FieldValue
    minute: FieldValue
    second: FieldValue
    microsecond: int


def next_cron(
    previous_dt: datetime,
    *,
    month: FieldValue = None,
    day: FieldValue = None,
    weekday: FieldValue = None,
    hour: FieldValue = None,
    minute: FieldValue = None,
    second: FieldValue = 0,
    microsecond: int = 123_456,
) -> datetime:
    """The first time at least a second after ``previous_dt`` that matches the fields (arq's ``next_cron``).

    It works on ``previous_dt``'s wall clock and keeps its tzinfo (naive stays naive); the result's microsecond is
    ``microsecond``. Unlike arq, an impossible schedule (``day=31, month=2``) raises instead of looping for ever.

    Raises:
        ConfigError: a field is out of range or the fields can never match.
    """
    schedule = Schedule.from_fields(
        month=month, day=day, weekday=weekday, hour=hour, minute=minute, second=second, microsecond=microsecond
    )
    return next_wall_run(schedule, previous_dt)


def next_wall_run(schedule: Schedule, previous_dt: datetime) -> datetime:
    """arq's stepping: from the whole second one second after ``previous_dt``, on its wall clock."""
    start = (previous_dt + timedelta(seconds=1)).replace(microsecond=0)
    wall = schedule.next_wall_time(start.replace(tzinfo=None))
    return wall.replace(tzinfo=previous_dt.tzinfo)


def cron(
    coroutine: Callable[..., Awaitable[Any]] | str,
    *,
    name: str | None = None,
    month: FieldValue = None,
    day: FieldValue = None,
    weekday: FieldValue = None,
    hour: FieldValue = None,
    minute: FieldValue = None,
    second: FieldValue = 0,
    microsecond: int = 123_456,
    run_at_startup: bool = False,
    unique: bool = True,
    job_id: str | None = None,
    timeout: SecondsTimedelta | None = None,
    keep_result: SecondsTimedelta | None = 0,
    keep_result_forever: bool = False,
    max_tries: int = 1,
    schedule: str | None = None,
    tz: str | tzinfo | None = None,
    catch_up: bool = False,
    executor: ExecutorKind | None = None,
) -> CronJob:
    """Declare a cron job, from arq-style fields or a crontab string (never both).

    Args:
        coroutine: ``async def job(ctx)``, or a ``"module:attr"`` path to one.
        name: the name the job is enqueued under (default ``"cron:<function name>"``).
        month, day, weekday, hour, minute, second: when to run, as in arq: an int, a set/list of ints, or None
            for "any"; ``weekday`` is 0–6 (monday–sunday) or ``"mon"``…``"sun"``. A day must match both
            ``day`` and ``weekday``.
        microsecond: the microsecond of the second the job runs at (arq's default 123456).
        run_at_startup: also enqueue one run when a worker starts (once per worker).
        unique: enqueue each occurrence under ``name:unix_ms`` so it runs once however many workers run.
            False gives each enqueue a random id, so every worker enqueues its own copy.
        job_id: a fixed job id used for every occurrence (one run at a time, like arq).
        timeout: the job's timeout (default: the worker's).
        keep_result: how long to keep the result (default 0: not kept).
        keep_result_forever: keep results without expiry.
        max_tries: how many times to try the job (default 1: a failed cron run is not retried).
        schedule: a crontab string such as ``"0 8 * * mon-fri"`` (5 fields, or 6 with seconds last).
        tz: the IANA zone the schedule's wall-clock times are in (default: the worker's, else UTC).
        catch_up: when a worker starts, enqueue the most recent occurrence missed while no worker ran.
        executor: where it runs, as for ``func``: ``"async"``, ``"thread"`` (the default for a plain ``def``) or
            ``"process"``.

    Raises:
        ConfigError: a bad field, crontab string or zone, or both ``schedule`` and fields.
        ImportStringError: a ``"module:attr"`` path does not resolve.
        TypeError: the object is not a function the executor can run.
    """
    if isinstance(coroutine, str):
        name = name or "cron:" + default_name(coroutine)
    target = func(coroutine, executor=executor)  # the same rules as any job function
    function = target.coroutine
    name = name or "cron:" + getattr(function, "__qualname__", type(function).__name__)
    label = f'cron job "{name}"'
    if isinstance(microsecond, bool) or not isinstance(microsecond, int):
        raise ConfigError(f"{label}: microsecond must be one whole number 0-999999 (got {microsecond!r})")
    if schedule is not None:
        given: dict[str, FieldValue] = {
            key: value
            for key, value in (("month", month), ("day", day), ("weekday", weekday), ("hour", hour), ("minute", minute))
            if value is not None
        }
        if second != 0:
            given["second"] = second
        if given:
            raise ConfigError(
                f"{label}: give either schedule or the fields ({', '.join(given)}), not both; "
                "a crontab string has its own minute, hour, day, month and weekday columns"
            )
        if microsecond not in (0, 123_456):
            raise ConfigError(f"{label}: microsecond cannot be combined with schedule; crontab runs on the second")
        parsed = Schedule.from_crontab(schedule)
    else:
        parsed = Schedule.from_fields(
            month=month,
            day=day,
            weekday=weekday,
            hour=hour,
            minute=minute,
            second=second,
            microsecond=microsecond,
            label=label,
        )
    if max_tries < 1:
        raise ConfigError(f"{label}: max_tries must be at least 1 (got {max_tries})")
    return CronJob(
        name,
        function,
        *((None,) * 5 if schedule is not None else (month, day, weekday, hour, minute)),
        second=None if schedule is not None else second,
        microsecond=0 if schedule is not None else microsecond,
        run_at_startup=run_at_startup,
        unique=unique,
        job_id=job_id,
        timeout_s=to_seconds(timeout),
        keep_result_s=to_seconds(keep_result),
        keep_result_forever=keep_result_forever,
        max_tries=max_tries,
        schedule=parsed,
        tz=resolve_tz(tz, f"{label}: tz"),
        catch_up=catch_up,
        executor=target.executor,
        path=target.path,
    )


class CronScheduler:
    """Enqueues every occurrence of every cron job, shortly before it is due, deferred to its exact time.

    The Worker creates one, runs ``run()`` as a task and cancels it at shutdown. Several workers may run
    schedulers for the same jobs: ids and ``_unique_for`` make each occurrence run once.

    Args:
        cron_jobs: the jobs.
        pool: a ``RunnerRedis`` (anything with ``enqueue_job`` and redis-py's commands).
        queue_name: the queue to enqueue on.
        default_tz: the zone for jobs that name none (default UTC); a tzinfo or an IANA name.
        lead: how many seconds before an occurrence to enqueue it.
        max_late: an occurrence found more than this many seconds late (the process stalled, the machine slept)
            is dropped, except the most recent one; missed occurrences are not replayed.
    """

    def __init__(
        self,
        cron_jobs: Sequence[CronJob],
        *,
        pool: Any,
        queue_name: str,
        default_tz: tzinfo | str | None = None,
        lead: float = 1.0,
        max_late: float = 60.0,
    ) -> None:
        self.cron_jobs = list(cron_jobs)
        self.pool = pool
        self.queue_name = queue_name
        self.default_tz = resolve_tz(default_tz, "timezone")
        self.lead = timedelta(seconds=lead)
        self.max_late = timedelta(seconds=max_late)
        # each job's next occurrence, by its place in cron_jobs: two jobs may share a name (one coroutine, two
        # schedules), as in arq
        self._next: dict[int, datetime] = {}
        self._record_last: Any = None

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    async def start(self) -> None:
        """Plan each job's first occurrence and do the startup enqueues (run_at_startup, catch_up).

        The worker awaits this before it takes its first job, so a burst worker sees its startup jobs.
        """
        now = self.now()
        for index, job in enumerate(self.cron_jobs):
            # kept in UTC: aware datetimes sharing a zone compare by wall time, ignoring fold
            self._next[index] = job.next_after(now, self.default_tz).astimezone(UTC)
        await self.startup(now)

    async def run(self) -> None:
        """Schedule forever (until cancelled); starts first unless ``start()`` was awaited already."""
        if not self._next:
            await self.start()
        while True:
            failures = await self.tick(self.now())
            # after a failed enqueue the occurrence is due already: back off instead of spinning on a dead server
            await asyncio.sleep(max(self._sleep_s(self.now()), 1.0 if failures else 0.0))

    async def startup(self, now: datetime) -> None:
        """run_at_startup and catch_up, once per worker start."""
        for job in self.cron_jobs:
            try:
                if job.catch_up:
                    await self._catch_up(job, now)
                if job.run_at_startup:
                    at = now.astimezone(job.zone(self.default_tz))
                    job_id = job.job_id or (f"{job.name}:{to_unix_ms(at)}" if job.unique else None)
                    logger.info("%s: run at startup", job.name)
                    await self.pool.enqueue_job(job.name, _job_id=job_id, _queue_name=self.queue_name)
            except (RedisError, OSError, RedisUnavailable) as exc:
                logger.warning("%s: startup enqueue failed: %s", job.name, exc)

    async def tick(self, now: datetime) -> int:
        """Enqueue every occurrence due within ``lead`` of ``now``; returns how many enqueues failed."""
        failures = 0
        for place, job in enumerate(self.cron_jobs):
            occurrence = self._next[place]
            due: list[datetime] = []
            while occurrence <= now + self.lead:
                due.append(occurrence)
                occurrence = job.next_after(occurrence, self.default_tz).astimezone(UTC)
            if not due:
                continue
            on_time = [o for o in due if o >= now - self.max_late] or [due[-1]]
            if len(on_time) < len(due):
                logger.warning(
                    "%s: %d occurrences were more than %gs late and are skipped (missed runs are not replayed)",
                    job.name,
                    len(due) - len(on_time),
                    self.max_late.total_seconds(),
                )
            for index, scheduled in enumerate(on_time):
                following = on_time[index + 1] if index + 1 < len(on_time) else occurrence
                try:
                    await self.enqueue(job, scheduled, following)
                except (RedisError, OSError, RedisUnavailable) as exc:
                    # keep this occurrence as the next one, to try again on the next tick
                    logger.warning("%s: enqueue of %s failed, will retry: %s", job.name, scheduled.isoformat(), exc)
                    occurrence = scheduled
                    failures += 1
                    break
            self._next[place] = occurrence
        return failures

    async def enqueue(self, job: CronJob, scheduled: datetime, following: datetime) -> bool:
        """Enqueue one occurrence; False when another worker (or an earlier enqueue) already did."""
        unix_ms = to_unix_ms(scheduled)
        unique_for: timedelta | None = None
        if job.job_id is not None:
            job_id: str | None = job.job_id
        elif job.unique:
            job_id = f"{job.name}:{unix_ms}"
            # long enough that no worker can still be about to enqueue this occurrence when the marker expires
            unique_for = max(2 * (following - scheduled), timedelta(hours=1))
        else:
            job_id = None
        result = await self.pool.enqueue_job(
            job.name,
            _job_id=job_id,
            _queue_name=self.queue_name,
            _defer_until=scheduled,
            _unique_for=unique_for,
        )
        if self._record_last is None:
            self._record_last = self.pool.register_script(scripts.CRON_LAST)
        await self._record_last(keys=[self._last_key(job)], args=[unix_ms])
        if result is not None:
            logger.debug("%s: enqueued %s for %s", job.name, result.job_id, scheduled.isoformat())
        return result is not None

    async def _catch_up(self, job: CronJob, now: datetime) -> None:
        stored = await self.pool.get(self._last_key(job))
        if stored is None:
            return  # never scheduled before: nothing was missed
        last = ms_to_datetime(int(stored))
        missed = latest_between(job, last, now, self.default_tz)
        if missed is None:
            return
        logger.info("%s: catching up the missed run of %s", job.name, missed.isoformat())
        following = job.next_after(missed, self.default_tz)
        await self.enqueue(job, missed, following)

    def _last_key(self, job: CronJob) -> str:
        """Where the latest enqueued occurrence of ``job`` is recorded (unix ms)."""
        return str(self.pool.key_layout.cron_last(self.queue_name, job.name))

    def _sleep_s(self, now: datetime) -> float:
        if not self._next:
            return 60.0
        until = min(self._next.values()) - self.lead - now
        # wake at least every 10s, so a wall-clock jump is noticed soon
        return min(max(until.total_seconds(), 0.0), 10.0)


def latest_between(job: CronJob, lower: datetime, upper: datetime, default_tz: tzinfo | None = None) -> datetime | None:
    """The latest occurrence in (lower, upper], or None; searches backwards in growing windows."""
    window = timedelta(seconds=1)
    while True:
        probe = max(lower, upper - window)
        latest = None
        occurrence = job.next_after(probe, default_tz)
        while occurrence <= upper:
            latest = occurrence
            occurrence = job.next_after(occurrence, default_tz)
        if latest is not None or probe == lower:
            return latest
        window *= 4


def function_table(
    functions: Sequence[Function | Callable[..., Awaitable[Any]] | str], cron_jobs: list[Any]
) -> dict[str, Function]:
    """A worker's functions and cron jobs by name; a name given to two different coroutines is refused."""
    named = [func(entry) for entry in functions]
    if not all(isinstance(job, CronJob) for job in cron_jobs):
        raise InvalidArgument("cron_jobs, must be instances of CronJob")
    by_name: dict[str, Function] = {}
    for function in [*named, *cron_jobs]:
        known = by_name.get(function.name)
        if known is not None and known.coroutine is not function.coroutine:
            raise InvalidArgument(
                f"two functions or cron jobs are named {function.name!r}; names must be unique "
                "(one coroutine may have several cron jobs)"
            )
        # one coroutine under one name more than once (two cron schedules): the last one's settings run it, as in arq
        by_name[function.name] = function
    if not by_name:
        raise InvalidArgument("at least one function or cron_job must be registered")
    return by_name
