"""Bench driver for saq (runs in bench/.compare-venv). See common.py for the protocol."""

from __future__ import annotations

import asyncio
from typing import Any

from common import (
    JOB_FUNCTIONS,
    Tally,
    client_op,
    finish,
    read_spec,
    ready_and_wait,
    run_worker,
)
from saq import Job, Queue, Worker


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    queue = Queue.from_url(spec["url"], name=spec.get("queue", "default"))
    await queue.connect()
    await queue.redis.ping()
    op = spec["op"]
    if op == "template":
        # the stored form of one queued no-op job, with a placeholder where its key goes (for fast fills)
        ready_and_wait()
        job = Job(function="noop", queue=queue, key="@@KEY@@")
        return {"payload": queue.serialize(job), "id_prefix": queue.job_id("")}
    if op == "work":
        tally = Tally()
        options = {"dequeue_timeout": 0.2, **spec.get("options", {})}
        worker = Worker(
            queue,
            list(JOB_FUNCTIONS.items()),
            burst=spec.get("burst", True),
            after_process=tally.hook,
            max_burst_jobs=spec.get("limit") or None,
            **options,
        )
        t0 = ready_and_wait()
        return await run_worker(spec, tally, worker.start, t0)

    async def wait_result(job: Any) -> float:
        await job.refresh(until_complete=30)
        finished: float = job.result
        return finished

    # saq has no bulk call (and caps the enqueues in flight at 20 itself)
    result = await client_op(spec, queue.enqueue, wait_result)
    if result is not None:
        return result
    raise SystemExit(f"unknown op {op!r}")


if __name__ == "__main__":
    finish(asyncio.run(main(read_spec())))
