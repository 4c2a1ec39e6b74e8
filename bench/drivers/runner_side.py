"""Bench driver for runner (runs in the project's venv). See common.py for the protocol."""

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

from runner import JobSpec, RedisSettings, Worker, create_pool, func


async def main(spec: dict[str, Any]) -> dict[str, Any]:
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


if __name__ == "__main__":
    finish(asyncio.run(main(read_spec())))
