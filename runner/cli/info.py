"""``runner info``: per queue, how many jobs wait, how old the oldest is, whether outcomes still flow."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from runner.cli.loading import config_argument
from runner.cli.ops import age, open_ops, table, verbose_option
from runner.engine.client import RunnerRedis
from runner.engine.inspection import STATS_WINDOW_MINUTES, QueueStats, queue_stats

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: redraw in place like top
HEADER = ["QUEUE", "QUEUED", "DEFERRED", "IN PROGRESS", "OLDEST", "DONE/MIN", "FAILED/MIN", "WORKERS"]


@click.command("info")
@config_argument
@click.option("--queue", "queue_name", metavar="NAME", help="Show only this queue of the file.")
@click.option("--watch", is_flag=True, help="Refresh in place until Ctrl-C, like top.")
@click.option(
    "--interval",
    metavar="SECONDS",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="Pause between refreshes with --watch.",
)
@click.option(
    "-n", "--iterations", metavar="N", type=click.IntRange(min=1), help="With --watch, stop after N refreshes."
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="A table, or one JSON object per refresh.",
)
@verbose_option
def info(
    config_file: Path,
    queue_name: str | None,
    watch: bool,
    interval: float,
    iterations: int | None,
    output_format: str,
    verbose: bool,
) -> None:
    """Queue depths, oldest wait, outcomes per minute, workers.

    Per queue: queued, deferred and in-progress jobs, how long the oldest due job has waited, completions and
    failures per minute over the last five minutes, and the workers that reported within their health interval;
    then each flow-control limit (concurrency, rate_limit) and its current use.
    """
    ops = open_ops(config_file, verbose)
    queues = ops.check_queue(queue_name)

    async def snapshot(pool: RunnerRedis) -> list[QueueStats]:
        return [
            await queue_stats(pool, queue, health_check_key=ops.option(queue, "health_check_key")) for queue in queues
        ]

    if not watch:
        click.echo(render(ops.run(snapshot), output_format))
        return
    redraw = output_format == "text" and sys.stdout.isatty()
    count = 0
    try:
        while True:
            frame = render(ops.run(snapshot), output_format)
            if output_format == "text":
                stamp = datetime.now(tz=UTC).strftime("%H:%M:%S")
                title = f"{ops.loaded.document.display_name} at {stamp} UTC, every {interval:g}s (Ctrl-C to stop)"
                frame = f"{title}\n{frame}"
            if redraw:
                click.echo(CLEAR + frame, nl=True)
            else:
                click.echo(frame if count == 0 or output_format == "json" else "\n" + frame)
            count += 1
            if iterations is not None and count >= iterations:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return


def render(stats: list[QueueStats], output_format: str) -> str:
    if output_format == "json":
        document = {
            "time": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            "queues": [s.as_dict() for s in stats],
        }
        return json.dumps(document)
    rows = [HEADER]
    for s in stats:
        rows.append(
            [
                s.queue,
                str(s.queued),
                str(s.deferred),
                str(s.in_progress),
                age(s.oldest_queued_age_s),
                f"{s.per_minute('complete'):.1f}",
                f"{s.per_minute('failed'):.1f}",
                str(s.workers_alive),
            ]
        )
    footer = f"(per minute over the last {STATS_WINDOW_MINUTES} minutes; OLDEST: the longest wait of a due job)"
    lines = [*table(rows, right=frozenset(range(1, len(HEADER)))), footer]
    limits = [["QUEUE", "SCOPE", "LIMIT", "IN USE"]]
    for s in stats:
        for use in s.limits:
            what = "running" if use.kind == "concurrency" else "started this period"
            limits.append([s.queue, use.scope, f"{use.kind} {use.limit}", f"{use.used:g} {what}"])
    if len(limits) > 1:
        lines += ["", *table(limits, right=frozenset())]
    return "\n".join(lines)
