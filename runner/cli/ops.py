"""What the operations commands (check, info, jobs, enqueue) share: the file's queues, a pool, time formats and
a progress bar that shows only on a terminal."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from runner.cli.exits import EXIT_FAILURE, handled
from runner.cli.loading import load
from runner.config import LoadedConfig, build_redis_settings, build_serializer
from runner.config.build import queue_options
from runner.config.checks import add_import_dir
from runner.engine.client import RunnerRedis
from runner.engine.connection import RedisSettings, create_pool
from runner.engine.serializers import Deserializer, Serializer

T = TypeVar("T")

verbose_option = click.option("-v", "--verbose", is_flag=True, help="Show tracebacks of unexpected errors.")


@dataclass
class Ops:
    """A loaded worker.toml, ready to talk to its Redis."""

    loaded: LoadedConfig
    redis_settings: RedisSettings
    dumps: Serializer
    loads: Deserializer
    verbose: bool

    @property
    def queues(self) -> list[str]:
        names: list[str] = self.loaded.settings.queue_names()
        return names

    def option(self, queue: str, name: str) -> Any:
        """A queue's effective worker option (the queue's own value, else the file's)."""
        return queue_options(self.loaded.settings, queue)[name]

    def check_queue(self, queue: str | None) -> list[str]:
        """``[queue]`` when given (it must be in the file), else every queue of the file."""
        if queue is None:
            return self.queues
        if queue not in self.queues:
            raise click.UsageError(
                f'queue "{queue}" is not in {self.loaded.document.display_name}; '
                f"choose one of: {', '.join(self.queues)}"
            )
        return [queue]

    async def pool(self) -> RunnerRedis:
        return await create_pool(
            self.redis_settings,
            job_serializer=self.dumps,
            job_deserializer=self.loads,
            default_queue_name=self.queues[0],
            expires_extra_ms=self.loaded.settings.expires_extra_ms,
        )

    def run(self, work: Callable[[RunnerRedis], Awaitable[T]]) -> T:
        """Open a pool, run ``work`` with it and close it; errors become ``Error:`` lines (exit 1)."""

        async def main() -> T:
            pool = await self.pool()
            try:
                return await work(pool)
            finally:
                await pool.aclose()

        with handled(EXIT_FAILURE, self.verbose):
            return asyncio.run(main())
        raise AssertionError("unreachable")  # pragma: no cover - handled() exits on every error


def open_ops(config_file: Path, verbose: bool) -> Ops:
    """Load ``config_file`` (every problem is reported, exit 1) and build what talking to its Redis needs."""
    with handled(EXIT_FAILURE, verbose):
        loaded = load(config_file)  # a ProblemList prints one line per problem
        add_import_dir(loaded.directory)  # a custom serializer lives beside worker.toml
        dumps, loads = build_serializer(loaded.settings)
        redis_settings = build_redis_settings(loaded.settings.redis, loaded.directory, loaded.settings.queue_shards())
        return Ops(loaded, redis_settings, dumps, loads, verbose)
    raise AssertionError("unreachable")  # pragma: no cover


def when(unix_ms: int | None) -> str:
    """A wire time as UTC, to the second: ``2026-11-23 21:50:01``."""
    if unix_ms is None:
        return "-"
    return datetime.fromtimestamp(unix_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def when_dt(moment: datetime | None) -> str:
    return "-" if moment is None else when(int(moment.timestamp() * 1000))


def age(seconds: float | None) -> str:
    """A short duration: ``0.4s``, ``12s``, ``5m03s``, ``2h04m``, ``3d05h``."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


@contextmanager
def progress(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr while it is a terminal; elsewhere (pipes, logs, tests) nothing is drawn."""
    stream = sys.stderr
    if length <= 0 or not stream.isatty():
        yield lambda _n: None
        return
    with click.progressbar(length=length, label=label, file=stream, show_pos=True) as bar:
        yield bar.update


def table(rows: list[list[str]], right: frozenset[int] = frozenset()) -> list[str]:
    """Rows as aligned columns (two spaces apart); columns in ``right`` are right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines


def echo_err(message: str) -> None:
    click.echo(message, err=True)
