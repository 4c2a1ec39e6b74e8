"""``runner check``: is every queue served by a worker that reported within its health interval?"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import click

from runner.cli.arq_compat import is_settings_path, load_settings_class
from runner.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_START, handled
from runner.cli.loading import config_argument
from runner.cli.ops import open_ops, verbose_option
from runner.engine.client import RunnerRedis
from runner.engine.connection import RedisSettings, create_pool
from runner.engine.health import own_record_ttl_s
from runner.engine.inspection import WorkerHealth, arq_health, worker_health
from runner.engine.keys import ARQ_LAYOUT, default_queue_name
from runner.engine.launch import get_kwargs
from runner.text import plural


@click.command("check")
@config_argument
@click.option("--queue", "queue_name", metavar="NAME", help="Check only this queue of the file.")
@verbose_option
def check(config_file: Path, queue_name: str | None, verbose: bool) -> None:
    """Exit 1 unless every queue has a live worker.

    A runner worker is live while its own health record exists: it renews it every half lease (at most every
    health_check_interval), and a worker that died drops out a little over a lease later. A queue served only
    by arq workers is judged by arq's shared key, written every health_check_interval.
    Given an arq settings class (app.worker.WorkerSettings) instead of a worker.toml, it is arq's `arq --check`:
    exit 0 when the class's queue has a health record.
    """
    if is_settings_path(str(config_file)):
        raise SystemExit(_check_settings_class(str(config_file), verbose))
    ops = open_ops(config_file, verbose)
    queues = ops.check_queue(queue_name)

    async def gather(pool: RunnerRedis) -> list[tuple[str, list[WorkerHealth], str | None]]:
        found = []
        for queue in queues:
            shared = await arq_health(pool, queue, ops.option(queue, "health_check_key"))
            found.append((queue, await worker_health(pool, queue), shared))
        return found

    healthy = True
    for queue, workers, shared in ops.run(gather):
        interval = ops.option(queue, "health_check_interval")
        within = own_record_ttl_s(interval, ops.option(queue, "lease"))
        if workers:
            click.echo(f"queue {queue}: {plural(len(workers), 'worker')} reported within {within:g}s")
            for record in workers:
                click.echo(f"  {record.worker_id}: {record.line}")
        elif shared is not None:
            # only arq workers (which write just the shared key) serve this queue
            click.echo(f"queue {queue}: an arq worker reported within {interval:g}s (shared key only)")
            click.echo(f"  {shared}")
        else:
            healthy = False
            click.echo(f"queue {queue}: no worker reported within {within:g}s")
    raise SystemExit(EXIT_OK if healthy else EXIT_FAILURE)


def _check_settings_class(target: str, verbose: bool) -> int:
    with handled(EXIT_START, verbose):
        found = get_kwargs(load_settings_class(target))
        settings = found.get("redis_settings") or RedisSettings()
        queue = found.get("queue_name") or default_queue_name
        key = found.get("health_check_key") or ARQ_LAYOUT.health_check(queue)

        async def read() -> bytes | None:
            pool = await create_pool(settings)
            try:
                return cast(bytes | None, await pool.get(key))
            finally:
                await pool.aclose()

        line = asyncio.run(read())
    if line is None:
        click.echo(f"queue {queue}: no health record at {key}")
        return EXIT_FAILURE
    click.echo(f"queue {queue}: {line.decode()}")
    return EXIT_OK
