"""The lease thread on a real server: claims live on while the event loop is blocked, and lapse when it stops."""

from __future__ import annotations

import threading
import time

import pytest

from runner import RunnerRedis
from runner.engine.connection import blocking_client
from runner.engine.lease_thread import LeaseThread
from runner.engine.utils import timestamp_ms

QUEUE = "arq:queue"


async def claim(pool: RunnerRedis, job_id: str, lease_ms: int) -> None:
    await pool.zadd(QUEUE, {job_id: timestamp_ms() + lease_ms})
    await pool.set("arq:in-progress:" + job_id, b"1", px=lease_ms)


def make(pool: RunnerRedis, lease_ms: int, lock: threading.Lock | None = None, **kwargs: object) -> LeaseThread:
    return LeaseThread(
        blocking_client(pool), queue_name=QUEUE, lease_ms=lease_ms, claims_lock=lock or threading.Lock(), **kwargs
    )  # type: ignore[arg-type]


async def test_claims_live_on_while_the_loop_is_blocked_and_lapse_after_stop(pool: RunnerRedis) -> None:
    await claim(pool, "j1", 1000)
    lease = make(pool, 1000)
    lease.hold("j1")
    lease.start()
    try:
        time.sleep(2.5)  # blocks this test's event loop for 2.5 leases: only the thread can renew
        assert await pool.exists("arq:in-progress:" + "j1")
        assert lease.renewals >= 6
        # the job's score moves with the claim, so it stays out of the due range while it runs
        score = await pool.zscore(QUEUE, "j1")
        assert score is not None and score > timestamp_ms()
    finally:
        lease.stop()
    time.sleep(1.2)
    assert not await pool.exists("arq:in-progress:" + "j1")


async def test_a_dropped_job_is_no_longer_renewed(pool: RunnerRedis) -> None:
    await claim(pool, "j1", 1000)
    await claim(pool, "j2", 1000)
    lease = make(pool, 1000)
    lease.hold("j1")
    lease.hold("j2")
    lease.drop("j2")
    lease.start()
    try:
        time.sleep(1.5)
        assert await pool.exists("arq:in-progress:" + "j1")
        assert not await pool.exists("arq:in-progress:" + "j2")
    finally:
        lease.stop()


async def test_an_expired_claim_is_taken_back_only_under_the_lock(pool: RunnerRedis) -> None:
    lock = threading.Lock()
    await pool.zadd(QUEUE, {"j1": timestamp_ms()})  # queued, its claim key gone (the process was frozen)
    lease = make(pool, 5000, lock)
    lease.hold("j1")
    try:
        with lock:  # the outcome writer holds the lock: the round only renews what exists
            assert lease.renew() == []
        assert not await pool.exists("arq:in-progress:" + "j1")
        assert lease.renew() == []
        assert await pool.exists("arq:in-progress:" + "j1")
    finally:
        lease.stop()


async def test_a_claim_that_cannot_be_taken_back_is_reported_lost(pool: RunnerRedis) -> None:
    # j1 is no longer queued (finished or purged elsewhere) and its claim is gone
    await pool.zadd(QUEUE, {"j2": timestamp_ms()})
    seen: list[list[str]] = []
    lease = make(pool, 5000, on_lost=seen.append)
    lease.hold("j1")
    lease.hold("j2")
    lease.finishing("j2")  # an outcome on its way is never re-taken, so never reported lost either
    try:
        assert lease.renew() == ["j1"]
        assert seen == [["j1"]]
        assert not await pool.exists("arq:in-progress:" + "j2")
    finally:
        lease.stop()


@pytest.mark.timeout(30)
async def test_an_unreachable_server_is_logged_once(caplog: pytest.LogCaptureFixture, pool: RunnerRedis) -> None:
    import redis

    lease = LeaseThread(
        redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2),
        queue_name=QUEUE,
        lease_ms=300,
        claims_lock=threading.Lock(),
    )
    lease.hold("j1")
    lease.start()
    try:
        time.sleep(1)
    finally:
        lease.stop()
    lines = [r for r in caplog.records if "cannot renew claims" in r.getMessage()]
    assert len(lines) == 1
