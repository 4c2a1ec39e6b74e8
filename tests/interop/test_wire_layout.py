"""The key layout of WIRE.md, checked key by key: one job's life on runner (runner client + runner Worker) next to
the same job's life on real arq (arq client + ``arq`` worker), while queued, running and finished.

Runner may add keys, but only under ``runner:``; every ``arq:`` key must match arq's in name, type, expiry and
payload shape.
"""

from __future__ import annotations

import asyncio
import pickle
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from runner import RunnerRedis, Worker
from runner.engine.utils import timestamp_ms
from tests.interop.arq_env import ArqClient
from tests.interop.conftest import wait_arq_worker, wait_until
from tests.interop.runner_jobs import FUNCTIONS, RELEASED

pytestmark = pytest.mark.interop

JOB_FIELDS = {"t", "f", "a", "k", "et"}
RESULT_FIELDS = JOB_FIELDS | {"s", "r", "st", "ft", "q", "id"}
HEALTH_LINE = re.compile(
    r"^[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} j_complete=\d+ j_failed=\d+ j_retried=\d+ j_ongoing=\d+ queued=\d+$"
)
DAY_MS = 86_400_000
RETRY_TTL_MS = 88_400_000
KEEP_RESULT_MS = 3_600_000
HEALTH_KEY = "arq:queue:health-check"
SLACK_MS = 5_000  # time between a write and our look at its TTL, generously

Snapshot = dict[str, dict[str, Any]]


async def snapshot(raw: aioredis.Redis, job_id: str) -> Snapshot:
    """Every key in the database, named with the job id replaced by ``<id>``: its type, PTTL and string value."""
    found: Snapshot = {}
    for key in await raw.keys("*"):
        entry: dict[str, Any] = {"type": (await raw.type(key)).decode(), "pttl": await raw.pttl(key)}
        if entry["type"] == "string":
            entry["value"] = await raw.get(key)
        elif entry["type"] == "zset":
            entry["members"] = {
                m.decode().replace(job_id, "<id>"): s for m, s in await raw.zrange(key, 0, -1, withscores=True)
            }
        found[key.decode().replace(job_id, "<id>")] = entry
    return found


async def started(raw: aioredis.Redis, job_id: str, *also: str) -> bool:
    # arq claims (in-progress key) and counts the try (retry key) in two round trips: wait for both
    wanted = [f"arq:in-progress:{job_id}", f"arq:retry:{job_id}", *also]
    return bool(await raw.exists(*wanted) == len(wanted))


def arq_part(snap: Snapshot) -> Snapshot:
    return {k: v for k, v in snap.items() if not k.startswith("runner:")}


async def runner_life(
    pool: RunnerRedis, make_worker: Callable[..., Worker], raw: aioredis.Redis
) -> tuple[str, list[Snapshot]]:
    job = await pool.enqueue_job("hold", "gate:layout", 7, key="v")
    assert job is not None
    queued = await snapshot(raw, job.job_id)
    runner_worker = make_worker(FUNCTIONS, poll_delay=0.02)
    worker = asyncio.create_task(asyncio.wait_for(runner_worker.async_run(), 30))
    await wait_until(lambda: started(raw, job.job_id, HEALTH_KEY), "the runner worker to start the job")
    running = await snapshot(raw, job.job_id)
    RELEASED.add("gate:layout")
    await worker
    await runner_worker.close()  # as the arq CLI's run() does after the burst
    return job.job_id, [queued, running, await snapshot(raw, job.job_id)]


async def arq_life(
    arq_client: ArqClient, arq_worker: Callable[[], subprocess.Popen[bytes]], raw: aioredis.Redis, tmp_path: Path
) -> tuple[str, list[Snapshot]]:
    job_id = await arq_client.enqueue("hold", "gate:layout", 7, kwargs={"key": "v"})
    assert job_id is not None
    queued = await snapshot(raw, job_id)
    proc = arq_worker()
    # arq records its health right after its first claims, in another round trip
    await wait_until(lambda: started(raw, job_id, HEALTH_KEY), "the arq worker to start the job", within_s=20)
    running = await snapshot(raw, job_id)
    await raw.set("gate:layout", 1)
    await wait_arq_worker(proc, tmp_path)
    await raw.delete("gate:layout")
    return job_id, [queued, running, await snapshot(raw, job_id)]


async def test_key_layout_matches_arq_queued_running_finished(
    pool: RunnerRedis,
    make_worker: Callable[..., Worker],
    arq_client: ArqClient,
    arq_worker: Callable[[], subprocess.Popen[bytes]],
    raw: aioredis.Redis,
    tmp_path: Path,
) -> None:
    before = timestamp_ms()
    runner_id, (r_queued, r_running, r_done) = await runner_life(pool, make_worker, raw)
    await raw.flushdb()
    arq_id, (a_queued, a_running, a_done) = await arq_life(arq_client, arq_worker, raw, tmp_path)

    # runner's additions live only under runner:, so what arq reads is exactly what arq itself writes
    # (both delete their health record when they stop)
    for r_snap, a_snap in ((r_queued, a_queued), (r_running, a_running), (r_done, a_done)):
        assert not [k for k in a_snap if k.startswith("runner:")]
        assert set(arq_part(r_snap)) == set(a_snap)
        for key, entry in a_snap.items():
            if key in r_snap:
                assert r_snap[key]["type"] == entry["type"], key
    assert HEALTH_KEY in r_running

    # queued: the queue zset (no expiry) and the job string (PSETEX now + expires_extra_ms)
    assert set(a_queued) == {"arq:queue", "arq:job:<id>"}
    for snap in (r_queued, a_queued):
        assert snap["arq:queue"]["type"] == "zset"
        assert snap["arq:queue"]["pttl"] == -1
        [(member, score)] = snap["arq:queue"]["members"].items()
        assert member == "<id>"
        assert score == int(score)
        assert before <= score <= timestamp_ms()
        assert DAY_MS - SLACK_MS <= snap["arq:job:<id>"]["pttl"] <= DAY_MS
    r_job = pickle.loads(r_queued["arq:job:<id>"]["value"])
    a_job = pickle.loads(a_queued["arq:job:<id>"]["value"])
    assert set(r_job) == set(a_job) == JOB_FIELDS
    assert (
        {k: r_job[k] for k in "tfak"}
        == {k: a_job[k] for k in "tfak"}
        == {
            "t": None,
            "f": "hold",
            "a": ("gate:layout", 7),
            "k": {"key": "v"},
        }
    )
    assert type(r_job["a"]) is type(a_job["a"]) is tuple
    assert type(r_job["et"]) is type(a_job["et"]) is int

    # running: still in the queue, plus the in-progress claim, the try counter and the health record
    assert set(a_running) == {
        "arq:queue",
        "arq:job:<id>",
        "arq:in-progress:<id>",
        "arq:retry:<id>",
        "arq:queue:health-check",
    }
    # arq writes 1 in the claim; runner writes its holder token there (arq only ever checks the key exists)
    assert a_running["arq:in-progress:<id>"]["value"] == b"1"
    assert re.fullmatch(rb"[0-9a-f]{12}\.[0-9a-f]{8}:\d+", r_running["arq:in-progress:<id>"]["value"])
    for snap in (r_running, a_running):
        assert "<id>" in snap["arq:queue"]["members"]
        assert snap["arq:in-progress:<id>"]["type"] == "string"
        assert snap["arq:in-progress:<id>"]["pttl"] > 0
        assert snap["arq:retry:<id>"]["value"] == b"1"
        assert RETRY_TTL_MS - SLACK_MS <= snap["arq:retry:<id>"]["pttl"] <= RETRY_TTL_MS

    # the health record: PSETEX interval + 1 s, arq's line format; both delete it when they stop
    assert HEALTH_KEY not in r_done
    for entry in (a_running[HEALTH_KEY], r_running[HEALTH_KEY]):
        assert entry["type"] == "string"
        assert HEALTH_LINE.match(entry["value"].decode())
        assert 0 < entry["pttl"] <= 3_601_000

    # finished: only the result (PX keep_result) is left; queue, job, claim and counter are gone
    assert set(a_done) == {"arq:result:<id>"}
    for snap in (r_done, a_done):
        assert KEEP_RESULT_MS - SLACK_MS <= snap["arq:result:<id>"]["pttl"] <= KEEP_RESULT_MS
    r_result = pickle.loads(r_done["arq:result:<id>"]["value"])
    a_result = pickle.loads(a_done["arq:result:<id>"]["value"])
    assert set(r_result) == set(a_result) == RESULT_FIELDS
    same = {"t": 1, "f": "hold", "k": {"key": "v"}, "s": True, "r": "released", "q": "arq:queue"}
    assert {k: r_result[k] for k in same} == {k: a_result[k] for k in same} == same
    assert (r_result["id"], a_result["id"]) == (runner_id, arq_id)
    for result in (r_result, a_result):
        assert all(type(result[k]) is int for k in ("et", "st", "ft"))
        assert result["et"] <= result["st"] <= result["ft"]


async def test_health_record_at_startup(make_worker: Callable[..., Worker], raw: aioredis.Redis) -> None:
    # arq records health on its first poll; an interval longer than any host's uptime catches a first record
    # that waits for the interval to pass on the monotonic clock (a bug runner once had)
    worker = make_worker(FUNCTIONS, poll_delay=0.02, health_check_interval=10**9)
    job = await worker_pool_enqueue_hold(raw)
    task = asyncio.create_task(asyncio.wait_for(worker.async_run(), 30))
    try:
        await wait_until(lambda: raw.exists(f"arq:in-progress:{job}"), "the runner worker to start the job")
        await wait_until(lambda: raw.exists(HEALTH_KEY), "a health record while the worker runs", within_s=5)
        line = await raw.get(HEALTH_KEY)
        assert HEALTH_LINE.match(line.decode())
    finally:
        RELEASED.add("gate:health")
        await task


async def worker_pool_enqueue_hold(raw: aioredis.Redis) -> str:
    """Enqueue ``hold("gate:health")`` the way arq does, with raw redis-py (no runner wake-up)."""
    job_id = "health-check-job"
    payload = pickle.dumps({"t": None, "f": "hold", "a": ("gate:health",), "k": {}, "et": timestamp_ms()})
    async with raw.pipeline(transaction=True) as pipe:
        pipe.set(f"arq:job:{job_id}", payload, px=DAY_MS)
        pipe.zadd("arq:queue", {job_id: timestamp_ms()})
        await pipe.execute()
    return job_id
