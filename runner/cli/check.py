"""``runner check``: is every queue served by a worker that reported within its health interval?"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from runner.cli.exits import EXIT_FAILURE, EXIT_OK
from runner.cli.loading import config_argument
from runner.cli.ops import open_ops, verbose_option
from runner.engine.client import RunnerRedis
from runner.engine.inspection import WorkerHealth, worker_health
from runner.engine.keys import ARQ_LAYOUT
from runner.text import plural


@click.command("check")
@config_argument
@click.option("--queue", "queue_name", metavar="NAME", help="Check only this queue of the file.")
@verbose_option
def check(config_file: Path, queue_name: str | None, verbose: bool) -> None:
    """Exit 1 unless every queue has a live worker.

    A worker is live while its own health record exists: it is written every health_check_interval and expires
    one second after the next one was due.
    """
    ops = open_ops(config_file, verbose)
    queues = ops.check_queue(queue_name)

    async def gather(pool: RunnerRedis) -> list[tuple[str, list[WorkerHealth], str | None]]:
        found = []
        for queue in queues:
            shared_key = ops.option(queue, "health_check_key") or ARQ_LAYOUT.health_check(queue)
            shared = cast(bytes | None, await pool.get(shared_key))
            found.append((queue, await worker_health(pool, queue), shared.decode() if shared else None))
        return found

    healthy = True
    for queue, workers, shared in ops.run(gather):
        interval = ops.option(queue, "health_check_interval")
        if workers:
            click.echo(f"queue {queue}: {plural(len(workers), 'worker')} reported within {interval:g}s")
            for record in workers:
                click.echo(f"  {record.worker_id}: {record.line}")
        elif shared is not None:
            # only arq workers (which write just the shared key) serve this queue
            click.echo(f"queue {queue}: a worker reported within {interval:g}s (shared key only)")
            click.echo(f"  {shared}")
        else:
            healthy = False
            click.echo(f"queue {queue}: no worker reported within {interval:g}s")
    raise SystemExit(EXIT_OK if healthy else EXIT_FAILURE)
