"""An arq worker and a runner worker on one queue, fed by an arq client and a runner client: every job runs once.

This is what sharing a queue during a migration needs: the two claim protocols (arq's WATCH/MULTI on the
in-progress key, runner's claim script) must exclude each other.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from runner import RunnerRedis, Worker
from tests.interop.arq_env import ArqClient
from tests.interop.conftest import wait_arq_worker, wait_until
from tests.interop.runner_jobs import FUNCTIONS

pytestmark = pytest.mark.interop

JOBS_PER_CLIENT = 40


async def test_arq_and_runner_workers_share_a_queue(
    pool: RunnerRedis,
    arq_client: ArqClient,
    arq_worker: Callable[[], subprocess.Popen[bytes]],
    make_worker: Callable[..., Worker],
    raw: aioredis.Redis,
    tmp_path: Path,
) -> None:
    job_ids = []
    for _ in range(JOBS_PER_CLIENT):
        arq_id = await arq_client.enqueue("count")
        runner_job = await pool.enqueue_job("count")
        assert arq_id is not None
        assert runner_job is not None
        job_ids += [arq_id, runner_job.job_id]

    proc = arq_worker()
    # let arq start taking jobs, then add a runner worker while most are still queued
    await wait_until(lambda: raw.exists(*(f"ran:{j}" for j in job_ids)), "the arq worker to run a job", within_s=20)
    await asyncio.wait_for(make_worker(FUNCTIONS, poll_delay=0.02, max_jobs=5).async_run(), 30)
    await wait_arq_worker(proc, tmp_path)

    runs = await raw.mget([f"ran:{j}" for j in job_ids])
    assert runs == [b"1"] * len(job_ids), "every job runs exactly once"
    results = {r.job_id: r for r in await pool.all_job_results()}
    assert set(results) == set(job_ids)
    assert all(r.success for r in results.values())
    ran_on = {r.result for r in results.values()}
    assert ran_on == {"arq", "runner"}, "both workers took part"
    assert not await raw.exists("arq:queue")
