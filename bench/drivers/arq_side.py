"""Bench driver for arq 0.28 (runs in bench/.compare-venv). See common.py for the protocol."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from arq import Worker, create_pool
from arq.connections import RedisSettings
from arq.worker import func
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


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    pool = await create_pool(RedisSettings.from_dsn(spec["url"]))
    await pool.ping()
    op = spec["op"]
    if op == "work":
        limit = spec.get("limit")
        worker = Worker(
            [func(f, name=name) for name, f in JOB_FUNCTIONS.items()],
            redis_pool=pool,
            burst=spec.get("burst", True),
            handle_signals=False,
            max_burst_jobs=limit if limit else -1,
            **spec.get("options", {}),
        )
        tally = Tally(lambda: worker.jobs_complete)
        t0 = ready_and_wait()
        return await run_worker(spec, tally, worker.async_run, t0)
    if op == "enqueue":
        if spec["mode"] == "bulk":
            # arq has no bulk call: many enqueue_job calls in flight at once
            t0 = ready_and_wait()
            await gather_in_windows(spec["n"], int(spec.get("window", 100)), lambda: pool.enqueue_job("noop"))
            return {"n": spec["n"], "elapsed": time.time() - t0}
        t0 = ready_and_wait()
        return await enqueue_loop(spec, lambda: pool.enqueue_job("noop"), t0)
    if op == "paced":
        ready_and_wait()
        await paced(spec["n"], spec["interval_s"], spec.get("delay_s", 0.3), lambda t: pool.enqueue_job("pickup", t=t))
        return {}
    if op == "result":

        async def one() -> float:
            job = await pool.enqueue_job("sleep10t")
            assert job is not None
            finished: float = await job.result(timeout=30)
            return finished

        ready_and_wait()
        return {"latencies": await result_latencies(spec["n"], one)}
    raise SystemExit(f"unknown op {op!r}")


if __name__ == "__main__":
    finish(asyncio.run(main(read_spec())))
