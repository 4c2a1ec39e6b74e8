"""``runner migrate-layout``: move waiting jobs from another server or key layout into the file's."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli.loading import config_argument
from runner.cli.ops import open_ops, verbose_option
from runner.engine.client import RunnerRedis
from runner.engine.connection import RedisSettings, create_pool
from runner.engine.relayout import MoveReport, move_waiting_jobs
from runner.text import plural


@click.command("migrate-layout")
@config_argument
@click.option("--from", "source_url", metavar="URL", required=True, help="The server the jobs are on now.")
@click.option("--from-cluster", is_flag=True, help="That server is a Redis Cluster (its jobs in the cluster layout).")
@click.option("--queue", "queue_name", metavar="NAME", help="Move only this queue of the file.")
@verbose_option
def migrate_layout(
    config_file: Path, source_url: str, from_cluster: bool, queue_name: str | None, verbose: bool
) -> None:
    """Move waiting jobs from another server or key layout into the file's.

    The file names where the jobs go ([redis], with cluster = true for the cluster layout); --from names the
    server they are on, in arq's layout unless --from-cluster. Each queued or deferred job is written to the
    file's server first and then deleted from the other, so none is lost (a crash between the two leaves it in
    both). Jobs a worker runs stay where they are. Stop the old workers first.
    """
    ops = open_ops(config_file, verbose)
    queues = ops.check_queue(queue_name)
    source_settings = RedisSettings.from_dsn(source_url, cluster=from_cluster)

    async def move(target: RunnerRedis) -> list[tuple[str, MoveReport]]:
        source = await create_pool(source_settings)
        try:
            return [(queue, await move_waiting_jobs(source, target, queue)) for queue in queues]
        finally:
            await source.aclose()

    for queue, report in ops.run(move):
        line = f"queue {queue}: moved {plural(report.moved, 'job')}"
        left = [
            (report.running, "running"),
            (report.taken, "whose id is taken here"),
            (report.expired, "expired"),
        ]
        kept = [f"{count} {why}" for count, why in left if count]
        click.echo(line + (f"; left {', '.join(kept)}" if kept else ""))
