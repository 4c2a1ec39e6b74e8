"""Moving a queue's waiting jobs from one key layout to another (``runner migrate-layout``), losing none.

The source and the target are two pools, each with its own layout and server: arq's layout on one Redis to the
cluster layout on a Redis Cluster, or back. A waiting job (queued or deferred, not held by a worker) is written
to the target first, with its payload, score, remaining lifetime and try counter (``enqueue.lua``: an id already
taken there is refused and the job stays where it is), and only then deleted from the source (``purge.lua``,
which leaves a job a worker took meanwhile). A crash between the two steps leaves the job in both places, never
in neither; stop the source's workers first, so none runs a job that has been copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from uuid import uuid4

from runner.engine import scripts
from runner.engine.client import enqueue_marker_ms
from runner.engine.keys import retry_key_ttl_s

BATCH = 100


@dataclass
class MoveReport:
    """What ``move_waiting_jobs`` did with the source queue's entries."""

    moved: int = 0
    running: int = 0  # held by a worker: left to finish where they are
    taken: int = 0  # the id is taken on the target: left on the source
    expired: int = 0  # no payload any more: left for a worker to fail as expired


async def move_waiting_jobs(source: Any, target: Any, queue: str, *, batch: int = BATCH) -> MoveReport:
    """Move every waiting job of ``queue`` from ``source``'s layout to ``target``'s."""
    report = MoveReport()
    kept = 0  # entries left on the source, which a re-read from the front skips
    enqueue = target.register_script(scripts.ENQUEUE)
    purge = source.register_script(scripts.PURGE)
    s_keys = source.key_layout
    while True:
        entries = await source.zrange(s_keys.queue(queue), kept, kept + batch - 1, withscores=True)
        if not entries:
            return report
        ids = [member.decode() for member, _ in entries]
        async with source.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.get(s_keys.job(queue, job_id))
                pipe.pttl(s_keys.job(queue, job_id))
                pipe.exists(s_keys.in_progress(queue, job_id))
                pipe.get(s_keys.retry(queue, job_id))
            found = await pipe.execute()
        moved: list[str] = []
        for index, (job_id, (_, score)) in enumerate(zip(ids, entries, strict=True)):
            payload, ttl, held, tries = found[4 * index : 4 * index + 4]
            if held:
                report.running += 1
            elif payload is None:
                report.expired += 1
            elif await _write(target, enqueue, queue, job_id, payload, int(score), int(ttl), tries):
                moved.append(job_id)
                continue
            else:
                report.taken += 1
            kept += 1
        if moved:
            job_keys = [
                key
                for job_id in moved
                for key in (s_keys.job(queue, job_id), s_keys.in_progress(queue, job_id), s_keys.retry(queue, job_id))
            ]
            deleted, running = await purge(keys=[s_keys.queue(queue), *job_keys], args=moved)
            report.moved += int(deleted)
            # taken by a source worker between the copy and the delete: it runs there and its copy runs too
            report.running += int(running)
            kept += int(running)


async def _write(
    target: Any, enqueue: Any, queue: str, job_id: str, payload: bytes, score: int, ttl_ms: int, tries: Any
) -> bool:
    t_keys = target.key_layout
    script_keys = [
        t_keys.queue(queue),
        t_keys.wake(queue),
        t_keys.abort(queue),
        t_keys.enqueued(queue, uuid4().hex),
        t_keys.job(queue, job_id),
        t_keys.result(queue, job_id),
        t_keys.unique(queue, job_id),
    ]
    expires = ttl_ms if ttl_ms > 0 else 86_400_000  # a payload without expiry keeps a day, as enqueue gives
    marker_ms = enqueue_marker_ms(target.reply_timeout_s())
    written = cast(list[int], await enqueue(keys=script_keys, args=[marker_ms, job_id, payload, score, expires, 0]))
    if not written[0]:
        return False
    if tries is not None:
        await target.set(t_keys.retry(queue, job_id), tries, ex=retry_key_ttl_s)
    return True
