"""Direction 1: the real arq client (PyPI arq 0.28, its own venv) enqueues, a runner Worker runs, arq reads back.

Everything arq sees goes through its own API (``enqueue_job``, ``Job.status/info/result/abort``) in the arq venv.
Where a result holds a runner-only class (runner.errors.JobExecutionFailed), arq cannot unpickle it, so those
cases are checked through raw redis with a tolerant unpickler instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from runner import RunnerRedis, Worker
from runner.engine.utils import timestamp_ms
from tests.interop.arq_env import ArqClient
from tests.interop.conftest import loads_tolerant, wait_until
from tests.interop.runner_jobs import FUNCTIONS, RELEASED

pytestmark = pytest.mark.interop

CANCELLED = {"__exc__": "asyncio.exceptions.CancelledError", "args": []}


@pytest.fixture
def runner_worker(make_worker: Callable[..., Worker]) -> Callable[..., Worker]:
    def make(**kwargs: Any) -> Worker:
        options: dict[str, Any] = {"allow_abort_jobs": True, "poll_delay": 0.02}
        options.update(kwargs)
        return make_worker(FUNCTIONS, **options)

    return make


async def run_burst(worker: Worker) -> None:
    """What the arq CLI's ``run()`` does: the burst, then ``close()`` (which removes the health record)."""
    try:
        await asyncio.wait_for(worker.async_run(), 30)
    finally:
        await worker.close()


async def test_plain_job_status_info_result(
    arq_client: ArqClient, runner_worker: Callable[..., Worker], raw: aioredis.Redis
) -> None:
    before = timestamp_ms()
    job_id = await arq_client.enqueue("add", 1, 2, kwargs={"c": 3})
    assert job_id is not None
    assert await arq_client.status(job_id) == "queued"
    info = await arq_client.info(job_id)
    assert info is not None
    assert (info["function"], info["args"], info["kwargs"], info["job_try"]) == ("add", [1, 2], {"c": 3}, None)
    assert before <= info["score"] <= timestamp_ms()

    await run_burst(runner_worker())

    assert await arq_client.result(job_id) == {"value": 6}
    assert await arq_client.status(job_id) == "complete"
    done = await arq_client.info(job_id)
    assert done is not None
    assert (done["success"], done["result"], done["job_try"]) == (True, 6, 1)
    assert (done["queue_name"], done["job_id"], done["function"]) == ("arq:queue", job_id, "add")
    assert done["enqueue_time"]["__ms__"] <= done["start_time"]["__ms__"] <= done["finish_time"]["__ms__"]
    # the stopped worker removed its health record, as arq's does
    assert set(await raw.keys("arq:*")) == {f"arq:result:{job_id}".encode()}

    assert await arq_client.status("no-such-job") == "not_found"
    missing = await arq_client.result("no-such-job")
    assert missing["error"]["__exc__"] == "arq.jobs.ResultNotFound"


async def test_in_progress_status(
    arq_client: ArqClient, runner_worker: Callable[..., Worker], raw: aioredis.Redis
) -> None:
    job_id = await arq_client.enqueue("hold", "gate:1")
    assert job_id is not None
    worker = asyncio.create_task(run_burst(runner_worker()))
    await wait_until(lambda: raw.exists(f"arq:in-progress:{job_id}"), "the runner worker to claim the job")
    # the claim holds the runner worker's holder token, not arq's 1: arq only asks whether the key exists
    assert await raw.get(f"arq:in-progress:{job_id}") not in (None, b"1")
    assert await arq_client.status(job_id) == "in_progress"
    running = await arq_client.info(job_id)
    assert running is not None
    assert (running["function"], running["args"]) == ("hold", ["gate:1"])
    RELEASED.add("gate:1")
    await worker
    assert await arq_client.result(job_id) == {"value": "released"}
    assert await arq_client.status(job_id) == "complete"


async def test_deferred_by_and_until(arq_client: ArqClient, runner_worker: Callable[..., Worker]) -> None:
    before = timestamp_ms()
    by_id = await arq_client.enqueue("whoami", defer_by=0.4)
    until_ms = timestamp_ms() + 400
    until_id = await arq_client.enqueue("whoami", defer_until_ms=until_ms)
    assert by_id is not None
    assert until_id is not None
    assert await arq_client.status(by_id) == "deferred"
    assert await arq_client.status(until_id) == "deferred"
    by_info = await arq_client.info(by_id)
    until_info = await arq_client.info(until_id)
    assert by_info is not None
    assert until_info is not None
    assert by_info["score"] >= before + 400
    assert until_info["score"] == until_ms

    await run_burst(runner_worker())

    for job_id, score in ((by_id, by_info["score"]), (until_id, until_ms)):
        assert await arq_client.result(job_id) == {
            "value": {"job_id": job_id, "job_try": 1, "score": score, "worker": "runner"}
        }
        done = await arq_client.info(job_id)
        assert done is not None
        assert done["start_time"]["__ms__"] >= score, "a deferred job must not start before its time"


async def test_job_id_dedupe(arq_client: ArqClient, runner_worker: Callable[..., Worker], pool: RunnerRedis) -> None:
    assert await arq_client.enqueue("add", 1, 1, job_id="dup") == "dup"
    assert await arq_client.enqueue("add", 5, 5, job_id="dup") is None
    # a runner client sharing the queue honours arq's id too
    assert await pool.enqueue_job("add", 7, 7, _job_id="dup") is None

    await run_burst(runner_worker())

    assert await arq_client.result("dup") == {"value": 2}
    # the kept result still blocks the id, as with arq's own worker
    assert await arq_client.enqueue("add", 5, 5, job_id="dup") is None


async def test_retry_with_defer(
    arq_client: ArqClient, runner_worker: Callable[..., Worker], raw: aioredis.Redis
) -> None:
    job_id = await arq_client.enqueue("retry_twice")
    assert job_id is not None
    await run_burst(runner_worker())
    assert await arq_client.result(job_id) == {"value": 3}
    done = await arq_client.info(job_id)
    assert done is not None
    assert (done["success"], done["job_try"]) == (True, 3)
    assert not await raw.exists(f"arq:retry:{job_id}", f"arq:job:{job_id}", f"arq:in-progress:{job_id}")


async def test_failures_come_back(
    arq_client: ArqClient, runner_worker: Callable[..., Worker], raw: aioredis.Redis
) -> None:
    failing = await arq_client.enqueue("fail", "boom")
    exhausted = await arq_client.enqueue("always_retry")
    unknown = await arq_client.enqueue("no_such_function", 1)
    assert failing is not None
    assert exhausted is not None
    assert unknown is not None

    await run_burst(runner_worker())

    assert await arq_client.result(failing) == {"error": {"__exc__": "builtins.ValueError", "args": ["boom"]}}
    info = await arq_client.info(failing)
    assert info is not None
    assert (info["success"], info["result"], info["job_try"]) == (
        False,
        {"__exc__": "builtins.ValueError", "args": ["boom"]},
        1,
    )
    # runner's own failures hold runner.errors.JobExecutionFailed, which the arq venv cannot unpickle:
    # check arq sees them complete, and read the stored record through raw redis instead
    for job_id, message, tries in (
        (exhausted, "max 2 retries exceeded", 3),
        (unknown, "function 'no_such_function' not found", 1),
    ):
        assert await arq_client.status(job_id) == "complete"
        stored = loads_tolerant(await raw.get(f"arq:result:{job_id}"))
        assert stored["s"] is False
        assert stored["t"] == tries
        assert stored["r"].args == (message,)
        assert "JobExecutionFailed" in type(stored["r"]).__qualname__ + getattr(stored["r"], "qualname", "")


async def test_abort_queued_deferred_and_running(
    arq_client: ArqClient, runner_worker: Callable[..., Worker], raw: aioredis.Redis
) -> None:
    running = await arq_client.enqueue("hold", "gate:never")
    queued = await arq_client.enqueue("add", 1, 2)
    deferred = await arq_client.enqueue("add", 3, 4, defer_by=60)
    assert running is not None
    assert queued is not None
    assert deferred is not None
    # arq's abort() marks the job, then waits for its result: run it alongside the runner worker
    abort_queued = asyncio.create_task(arq_client.abort(queued))
    abort_deferred = asyncio.create_task(arq_client.abort(deferred))
    await wait_until(
        lambda: _all_present(raw.zmscore("arq:abort", [queued, deferred])), "arq to mark both jobs aborted"
    )
    assert await raw.zscore("arq:queue", deferred) == 1, "arq brings an aborted deferred job forward"

    worker = asyncio.create_task(run_burst(runner_worker()))
    assert await abort_queued == {"aborted": True}
    assert await abort_deferred == {"aborted": True}
    await wait_until(lambda: raw.exists(f"arq:in-progress:{running}"), "the runner worker to start the job")
    assert await arq_client.abort(running) == {"aborted": True}
    await worker

    for job_id in (running, queued, deferred):
        assert await arq_client.status(job_id) == "complete"
        assert await arq_client.result(job_id) == {"error": CANCELLED}
        info = await arq_client.info(job_id)
        assert info is not None
        assert info["success"] is False
    assert not await raw.exists("arq:abort", "arq:queue")


async def _all_present(scores: Awaitable[list[float | None]]) -> bool:
    return all(score is not None for score in await scores)


async def test_keep_result_zero(
    arq_client: ArqClient, runner_worker: Callable[..., Worker], raw: aioredis.Redis
) -> None:
    job_id = await arq_client.enqueue("no_result")
    assert job_id is not None
    await run_burst(runner_worker())
    assert not await raw.exists(f"arq:result:{job_id}")
    assert await arq_client.status(job_id) == "not_found"
    missing = await arq_client.result(job_id)
    assert missing["error"]["__exc__"] == "arq.jobs.ResultNotFound"


async def test_unserializable_result_reads_as_arq_expects(
    arq_client: ArqClient, runner_worker: Callable[..., Worker]
) -> None:
    job_id = await arq_client.enqueue("unpicklable")
    assert job_id is not None
    await run_burst(runner_worker())
    assert await arq_client.result(job_id) == {
        "error": {"__exc__": "arq.jobs.SerializationError", "args": ["unable to serialize result"]}
    }


async def test_custom_queue_and_listings(
    arq_client: ArqClient, runner_worker: Callable[..., Worker], pool: RunnerRedis, raw: aioredis.Redis
) -> None:
    job_id = await arq_client.enqueue("whoami", queue_name="arq:other")
    assert job_id is not None
    [listed] = await arq_client.queued_jobs(queue_name="arq:other")
    assert (listed["job_id"], listed["function"], listed["job_try"]) == (job_id, "whoami", None)
    # runner's listing reads arq's payload too
    [seen] = await pool.queued_jobs(queue_name="arq:other")
    assert (seen.job_id, seen.function, seen.job_try, seen.score) == (job_id, "whoami", None, listed["score"])

    await run_burst(runner_worker(queue_name="arq:other"))

    assert await arq_client.result(job_id, queue_name="arq:other") == {
        "value": {"job_id": job_id, "job_try": 1, "score": listed["score"], "worker": "runner"}
    }
    [result] = await arq_client.all_job_results()
    assert (result["job_id"], result["queue_name"], result["job_try"], result["success"]) == (
        job_id,
        "arq:other",
        1,
        True,
    )
    assert not await raw.exists("arq:other:health-check")  # removed when the worker stopped, as arq does
    assert not await raw.exists("arq:queue")


async def test_job_try_from_payload(arq_client: ArqClient, runner_worker: Callable[..., Worker]) -> None:
    job_id = await arq_client.enqueue("whoami", job_try=3)
    assert job_id is not None
    info = await arq_client.info(job_id)
    assert info is not None
    assert info["job_try"] == 3
    # a short lease bounds the wait should the job ever be left claimed (it must run exactly once)
    await run_burst(runner_worker(lease=1))
    # the payload's try (3) wins over the retry counter (1), as with arq's worker; the job runs once
    assert await arq_client.result(job_id) == {
        "value": {"job_id": job_id, "job_try": 3, "score": info["score"], "worker": "runner"}
    }


async def test_stale_abort_does_not_kill_a_later_arq_job(
    arq_client: ArqClient, runner_worker: Callable[..., Worker], raw: aioredis.Redis
) -> None:
    assert await arq_client.enqueue("add", 1, 1, job_id="again") == "again"
    await run_burst(runner_worker())
    # aborting a finished job leaves its id in arq:abort: arq never prunes it
    assert await arq_client.abort("again") == {"aborted": False}
    assert await raw.zscore("arq:abort", "again") is not None
    await raw.delete("arq:result:again")  # as when the result expires
    assert await arq_client.enqueue("add", 2, 2, job_id="again") == "again"
    await run_burst(runner_worker())
    assert await arq_client.result("again") == {"value": 4}
