"""Bench driver for runner (runs in the project's venv). See common.py for the protocol.

``"loop": "uvloop"`` in the spec runs the whole driver (connection, worker, client) on uvloop instead of asyncio's
own event loop, without anything in the engine knowing: the bench picks the loop, as an application would.
"""

from __future__ import annotations

import asyncio
from typing import Any

from common import (
    JOB_FUNCTIONS,
    LOOPS,
    Tally,
    client_op,
    finish,
    read_spec,
    ready_and_wait,
    run_worker,
)

from runner import JobSpec, RedisSettings, Worker, create_pool, func


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    # which loop this really is, so a figure said to be uvloop's can be checked to be
    loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    result = await operation(spec)
    return {**result, "loop": loop}


async def operation(spec: dict[str, Any]) -> dict[str, Any]:
    pool = await create_pool(RedisSettings.from_dsn(spec["url"]))
    await pool.ping()
    op = spec["op"]
    if op == "work":
        worker = Worker(
            [func(f, name=name) for name, f in JOB_FUNCTIONS.items()],
            redis_pool=pool,
            burst=spec.get("burst", True),
            handle_signals=False,
            max_burst_jobs=spec.get("limit") or -1,
            **spec.get("options", {}),
        )
        tally = Tally(lambda: worker.jobs_complete)
        t0 = ready_and_wait()
        return await run_worker(spec, tally, worker.async_run, t0)

    async def wait_result(job: Any) -> float:
        finished: float = await job.result(timeout=30)
        return finished

    async def bulk(n: int) -> None:
        batch = int(spec.get("batch", 1000))
        for start in range(0, n, batch):
            await pool.enqueue_many([JobSpec("noop") for _ in range(min(batch, n - start))])

    result = await client_op(spec, pool.enqueue_job, wait_result, bulk)
    if result is not None:
        return result
    raise SystemExit(f"unknown op {op!r}")


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``main(spec)`` to its end on a new event loop of the kind the spec names: asyncio's own, or uvloop's."""
    loop = spec.get("loop", "asyncio")
    if loop == "asyncio":
        return asyncio.run(main(spec))
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main(spec))
    raise SystemExit(f"unknown loop {loop!r}: expected one of {', '.join(LOOPS)}")


if __name__ == "__main__":
    finish(run(read_spec()))
