"""Bench driver for saq (runs in bench/.compare-venv). See common.py for the protocol."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from common import (
    JOB_FUNCTIONS,
    Tally,
    enqueue_loop,
    finish,
    gather_in_windows,
    paced,
    read_spec,
    ready_and_wait,
    result_latencies,
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
    if op == "enqueue":
        if spec["mode"] == "bulk":
            # saq has no bulk call: many enqueue calls in flight at once (saq caps them at 20 itself)
            t0 = ready_and_wait()
            await gather_in_windows(spec["n"], int(spec.get("window", 100)), lambda: queue.enqueue("noop"))
            return {"n": spec["n"], "elapsed": time.time() - t0}
        t0 = ready_and_wait()
        return await enqueue_loop(spec, lambda: queue.enqueue("noop"), t0)
    if op == "paced":
        ready_and_wait()
        await paced(spec["n"], spec["interval_s"], spec.get("delay_s", 0.3), lambda t: queue.enqueue("pickup", t=t))
        return {}
    if op == "result":

        async def one() -> float:
            job = await queue.enqueue("sleep10t")
            assert job is not None
            await job.refresh(until_complete=30)
            finished: float = job.result
            return finished

        ready_and_wait()
        return {"latencies": await result_latencies(spec["n"], one)}
    raise SystemExit(f"unknown op {op!r}")


if __name__ == "__main__":
    finish(asyncio.run(main(read_spec())))
