"""A hot queue split over shards: what a worker of such a queue runs, one lane per shard (docs/cluster.md).

A queue split over N shards (``RedisSettings(shards={"hot": 4})``, ``Worker(shards=4)``) is N queues of the cluster
layout, each with a hash tag of its own (``keys.KeyLayout.shard_queue``: ``{hot}``, ``{hot:1}``, …), so the shards
spread over the cluster's masters. Producers put a job on the shard its id hashes to (``keys.shard_index``), so an
id is unique across the shards and a ``Job`` handle finds it. A worker runs one lane per shard: a poll loop, lease
keeper, outcome writer and health reporter of the shard's own, with a share of ``max_jobs``, so every shard is
claimed from all the time and none waits behind another; the lanes share the executors, the job counts, the
lifecycle and the cron scheduler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from runner.engine.keys import KeyLayout, shard_queues
from runner.engine.lifecycle import REDIS_ERRORS
from runner.engine.records import JobRecord, RunningJobs
from runner.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class Lane:
    """One shard's share of a worker: the queue it claims from, the registry of its jobs and its slots."""

    queue_name: str
    running: RunningJobs
    max_jobs: int
    health_check_key: str


def plan_lanes(
    layout: KeyLayout, queue_name: str, shards: int, max_jobs: int, health_check_key: str | None
) -> list[Lane]:
    """The lanes of a worker on ``queue_name``: one for the queue itself, or one per shard.

    ``max_jobs`` is split over the lanes (the first ones get the remainder; each gets one at least), so a worker
    runs as many jobs at once however many shards its queue has. A custom ``health_check_key`` is shard 0's.
    """
    names = shard_queues(layout, queue_name, shards)
    base, extra = divmod(max_jobs, len(names))
    return [
        Lane(
            queue_name=name,
            running=RunningJobs(),
            max_jobs=max(base + (1 if index < extra else 0), 1),
            health_check_key=(health_check_key if index == 0 and health_check_key else layout.health_check(name)),
        )
        for index, name in enumerate(names)
    ]


def shard_count(shards: int | None, queue_name: str, known: Mapping[str, int], layout: KeyLayout) -> int:
    """The worker's shard count: ``shards`` if given, else the one its pool's settings name for the queue.

    Raises:
        InvalidArgument: below 1, more than 1 on a layout that cannot spread them, or at odds with the pool's.
    """
    if shards is not None and (not isinstance(shards, int) or isinstance(shards, bool) or shards < 1):
        raise InvalidArgument(f"shards must be a whole number of at least 1 (got {shards!r})")
    named = known.get(queue_name)
    if shards is not None and named is not None and named != shards:
        raise InvalidArgument(
            f'shards={shards} but the pool\'s RedisSettings.shards splits queue "{queue_name}" over {named}; '
            "give both the same count"
        )
    count = shards or named or 1
    if count > 1 and not layout.cluster_safe:
        raise InvalidArgument(
            f'queue "{queue_name}" split over {count} shards needs the cluster layout (cluster=True): arq\'s layout '
            "keeps a queue in one key, which arq's workers read"
        )
    return count


def check_flow(shards: int, queue_name: str, queue_flow: Any, functions: Mapping[str, Any]) -> None:
    """Refuse flow limits on a sharded queue: each shard would count its own, so a cap of 3 would let 3 × shards run.

    Priorities and groups stay (they order the jobs within each shard).
    """
    if shards <= 1:
        return
    limited = [name for name, function in functions.items() if getattr(getattr(function, "flow", None), "limited", 0)]
    if queue_flow.limited or limited:
        what = f"function {limited[0]}" if limited else "the queue"
        raise InvalidArgument(
            f'queue "{queue_name}" is split over {shards} shards, and {what} sets a cap or rate limit, which each '
            "shard would count apart; drop the limit or the shards"
        )


class ShardRunning(RunningJobs):
    """Every lane's running jobs seen as one registry (read-only: each lane's poll loop adds to its own)."""

    def __init__(self, lanes: list[RunningJobs]) -> None:
        self._lanes = lanes

    @property
    def _records(self) -> dict[str, JobRecord]:  # type: ignore[override]
        merged: dict[str, JobRecord] = {}
        for lane in self._lanes:
            merged.update(lane._records)
        return merged

    def add(self, record: JobRecord) -> None:
        raise RuntimeError("a sharded worker's jobs go into their lane's registry")

    def remove(self, record: JobRecord) -> bool:
        return any(lane.remove(record) for lane in self._lanes)

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes)

    def __iter__(self) -> Iterator[JobRecord]:
        return iter([record for lane in self._lanes for record in lane])


async def run_polls(polls: list[Any]) -> None:
    """Run every lane's poll loop until each has ended; one that fails ends the others (the worker winds down).

    In burst mode a lane ends when its shard is empty, while a job of another lane may still enqueue onto it: once
    every lane has ended, they go round again while any shard still holds jobs (and no stop, budget or
    ``max_burst_jobs`` says otherwise), so a burst ends only with the whole queue empty.
    """
    if len(polls) == 1:
        await polls[0].run()
        return
    while True:
        tasks = [asyncio.ensure_future(poll.run()) for poll in polls]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if not await _burst_goes_on(polls):
            return


async def _burst_goes_on(polls: list[Any]) -> bool:
    first = polls[0]
    settings = first.settings
    if not settings.burst or first.lifecycle.stopping or first.budget.exhausted:
        return False
    if settings.max_burst_jobs >= 0 and first.counts.started >= settings.max_burst_jobs:
        return False
    for poll in polls:
        try:
            if await poll.pool.zcard(poll.pool.key_layout.queue(poll.settings.queue_name)):
                return True
        except REDIS_ERRORS:
            return True  # the lanes ride the outage out, as a single worker's loop does
    return False
