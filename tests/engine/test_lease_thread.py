"""The lease thread on a real server: claims live on while the event loop is blocked, and lapse when it stops."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from runner import RunnerRedis
from runner.engine.connection import blocking_client
from runner.engine.lease_thread import LeaseThread
from runner.engine.protocol import ClaimLoss
from runner.engine.utils import timestamp_ms

QUEUE = "arq:queue"
PREFIX = "arq:in-progress:"


class Held:
    """What a worker's registry would say: job id -> True while it runs, False once its outcome is on its way."""

    def __init__(self, **jobs: bool) -> None:
        self.jobs = dict(jobs)

    def claims(self) -> tuple[list[str], list[str]]:
        return [j for j, r in self.jobs.items() if r], [j for j, r in self.jobs.items() if not r]


def request(retake: list[str], renew_only: list[str]) -> tuple[list[str], list[Any]]:
    ids = retake + renew_only
    args: list[Any] = [timestamp_ms(), LEASE_MS, len(retake)]
    for job_id in ids:
        args += [job_id, "1"]  # each claim with its holder token; claim() below writes arq's 1
    return [QUEUE, *[PREFIX + job_id for job_id in ids]], args


LEASE_MS = 600


async def claim(pool: RunnerRedis, job_id: str) -> None:
    await pool.zadd(QUEUE, {job_id: timestamp_ms() + LEASE_MS})
    await pool.set(PREFIX + job_id, b"1", px=LEASE_MS)


def make(client: Any, held: Held, lock: threading.Lock | None = None, **kwargs: Any) -> LeaseThread:
    return LeaseThread(
        client, claims=held.claims, request=request, lease_ms=LEASE_MS, claims_lock=lock or threading.Lock(), **kwargs
    )


async def test_claims_live_on_while_the_loop_is_blocked_and_lapse_after_stop(pool: RunnerRedis) -> None:
    await claim(pool, "j1")
    lease = make(blocking_client(pool), Held(j1=True))
    lease.start()
    try:
        time.sleep(LEASE_MS * 3 / 1000)  # blocks this test's event loop for 3 leases: only the thread can renew
        assert await pool.exists(PREFIX + "j1")
        assert lease.renewals >= 6
        # the job's score moves with the claim, so it stays out of the due range while it runs
        score = await pool.zscore(QUEUE, "j1")
        assert score is not None and score > timestamp_ms()
    finally:
        lease.stop()
    time.sleep(LEASE_MS * 1.5 / 1000)
    assert not await pool.exists(PREFIX + "j1")


async def test_a_job_no_longer_held_is_no_longer_renewed(pool: RunnerRedis) -> None:
    await claim(pool, "j1")
    await claim(pool, "j2")
    held = Held(j1=True, j2=True)
    del held.jobs["j2"]
    lease = make(blocking_client(pool), held)
    lease.start()
    try:
        time.sleep(LEASE_MS * 1.5 / 1000)
        assert await pool.exists(PREFIX + "j1")
        assert not await pool.exists(PREFIX + "j2")
    finally:
        lease.stop()


async def test_an_expired_claim_is_taken_back_only_under_the_lock(pool: RunnerRedis) -> None:
    lock = threading.Lock()
    await pool.zadd(QUEUE, {"j1": timestamp_ms()})  # queued, its claim key gone (the process was frozen)
    lease = make(blocking_client(pool), Held(j1=True), lock)
    try:
        with lock:  # the outcome writer holds the lock: the round only renews what exists
            assert lease.renew() == []
        assert not await pool.exists(PREFIX + "j1")
        assert lease.renew() == []
        assert await pool.exists(PREFIX + "j1")
    finally:
        lease.stop()


async def test_a_claim_that_cannot_be_taken_back_is_reported_lost(pool: RunnerRedis) -> None:
    # j1 is no longer queued (finished or purged elsewhere) and its claim is gone
    await pool.zadd(QUEUE, {"j2": timestamp_ms()})
    seen: list[list[tuple[str, ClaimLoss]]] = []
    # j2's outcome is on its way: never re-taken, so never reported lost either
    lease = make(blocking_client(pool), Held(j1=True, j2=False), on_lost=seen.append)
    try:
        assert lease.renew() == ["j1"]
        assert seen == [[("j1", ClaimLoss.GONE)]]
        assert not await pool.exists(PREFIX + "j2")
    finally:
        lease.stop()


@pytest.mark.timeout(30)
async def test_an_unreachable_server_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    import redis

    lease = make(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2), Held(j1=True))
    lease.start()
    try:
        time.sleep(1)
    finally:
        lease.stop()
    lines = [r for r in caplog.records if "cannot renew claims" in r.getMessage()]
    assert len(lines) == 1
