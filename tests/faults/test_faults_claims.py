"""Claims that know their holder: a frozen worker cannot undo the claim of the worker that took over, a claim whose
reply was lost runs at once without using a try, a stop's requeue keeps the try, a full Redis keeps draining, and a
payload that exits while it is decoded fails alone.

Frozen workers are real ``runner start`` processes stopped with SIGSTOP and woken with SIGCONT, ended by their pid;
lost replies go through a StallProxy (tests/support/proxy.py); the full Redis is a server of the test's own with
``maxmemory`` and ``noeviction``, Valkey and Debian's Redis 7.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import redis

from runner import Job, JobExecutionFailed, Worker
from runner.engine import RedisSettings, create_pool, scripts
from runner.engine.utils import timestamp_ms
from tests.faults.test_faults import READY, WorkerProcess, processes, wait_until
from tests.support.proxy import StallProxy
from tests.support.servers import RedisServer, ValkeyServer

__all__ = ["processes"]  # the fixture

TASKS = '''
import asyncio
import os
import time

from runner import Retry


def _record(path, line):
    with open(path, "a") as f:
        f.write(line + "\\n")


async def held(ctx, path, hold_first, hold):
    """Records start and end with the pid and try; the first try holds and then asks to be retried."""
    _record(path, f"s {ctx['job_try']} {os.getpid()} {time.time()}")
    if ctx["job_try"] == 1:
        await asyncio.sleep(hold_first)
        _record(path, f"r {ctx['job_try']} {os.getpid()} {time.time()}")
        raise Retry(defer=0)
    await asyncio.sleep(hold)
    _record(path, f"f {ctx['job_try']} {os.getpid()} {time.time()}")
    return os.getpid()
'''

TOML = """\
lease = "1s"
poll_delay = "0.1s"
job_timeout = "60s"
max_tries = {max_tries}

[redis]
url = "{url}"
conn_retries = 0

[functions.held]
path = "claimtasks:held"
"""


def project(directory: Path, url: str, max_tries: int = 5) -> Path:
    (directory / "claimtasks.py").write_text(TASKS)
    (directory / "worker.toml").write_text(TOML.format(url=url, max_tries=max_tries))
    return directory


def enqueue(url: str, function: str, *args: Any, **kwargs: Any) -> str:
    async def go() -> str:
        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            job = await pool.enqueue_job(function, *args, **kwargs)
            assert job is not None
            return job.job_id
        finally:
            await pool.aclose()

    return asyncio.run(go())


def runs(path: Path) -> list[tuple[str, int, int, float]]:
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        kind, job_try, pid, at = line.split()
        found.append((kind, int(job_try), int(pid), float(at)))
    return found


# -- 1. a frozen worker never undoes the claim of the worker that took over ---------------------------------------


def test_a_frozen_worker_cannot_release_the_claim_of_the_worker_that_took_over(
    tmp_path: Path, redis_url: str, processes: list[WorkerProcess]
) -> None:
    project(tmp_path, redis_url)
    record = tmp_path / "runs.txt"
    frozen = WorkerProcess(tmp_path)
    processes.append(frozen)
    frozen.wait_for(READY)
    job_id = enqueue(redis_url, "held", str(record), 2.5, 3.0)
    wait_until(lambda: [r for r in runs(record) if r[0] == "s"])
    frozen.signal(signal.SIGSTOP)  # frozen mid-job, past its 1 s lease
    try:
        healthy = [WorkerProcess(tmp_path), WorkerProcess(tmp_path)]
        processes.extend(healthy)
        for proc in healthy:
            proc.wait_for(READY)
        wait_until(lambda: [r for r in runs(record) if r[0] == "s" and r[1] == 2], timeout=20)
    finally:
        frozen.signal(signal.SIGCONT)
    # the frozen worker wakes with the job's first try still running; its Retry must not release the claim of the
    # worker running the second try, or a third worker starts the job while the second still runs
    wait_until(lambda: [r for r in runs(record) if r[0] == "f"], timeout=20)
    time.sleep(1.5)  # time for a third start, if the claim was released
    starts = [r for r in runs(record) if r[0] == "s"]
    assert [r[1] for r in starts] == [1, 2], runs(record)
    info = asyncio.run(_result_info(redis_url, job_id))
    assert info is not None and info.success and info.job_try == 2
    for proc in processes:
        proc.signal(signal.SIGTERM)
        assert proc.finish() == 0
    lost = [line for line in frozen.drain() if job_id in line and "claim" in line]
    assert len(lost) == 1, (frozen.seen, runs(record))  # the worker that lost the claim says so, once, naming the job
    assert "another worker" in lost[0]
    for proc in healthy:
        assert not [line for line in proc.drain() if "lost its claim" in line], proc.seen


async def _result_info(url: str, job_id: str) -> Any:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        job = Job(job_id, pool)
        await job.result(timeout=20, poll_delay=0.1)
        return await job.result_info()
    finally:
        await pool.aclose()


# -- 2. a try is a start of the function ----------------------------------------------------------------------------


async def echo_try(ctx: dict[str, Any]) -> int:
    return int(ctx["job_try"])


async def sleepy(ctx: dict[str, Any]) -> int:
    await asyncio.sleep(ctx.get("hold", 30) if ctx["job_try"] == 1 else 0)
    return int(ctx["job_try"])


CLAIM_SHA = hashlib.sha1(scripts.CLAIM.encode()).hexdigest().encode()


@pytest.fixture
def proxy(redis_url: str) -> Iterator[StallProxy]:
    p = StallProxy(urlparse(redis_url).port or 6379).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.mark.parametrize("outlasting_retries", [False, True], ids=["resent-by-redis-py", "after-the-outage"])
async def test_a_claim_whose_reply_was_lost_runs_at_once_and_uses_no_try(
    proxy: StallProxy, redis_url: str, outlasting_retries: bool
) -> None:
    # a 30 s lease: a claim left to lapse would not run within the test's 15 s
    settings = RedisSettings.from_dsn(proxy.url, socket_timeout=0.5)
    worker = Worker([echo_try], redis_settings=settings, lease=30, max_tries=1, poll_delay=0.3, handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    producer = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        first = await producer.enqueue_job("echo_try")
        assert first is not None and await first.result(timeout=10) == 1  # the claim script is loaded
        # the worker's next claim reaches the server and claims the job, but its reply is held: redis-py sends the
        # call again on a new connection, or, when every connection stalls, gives up until the outage ends
        proxy.lose_reply_to(CLAIM_SHA, new=outlasting_retries)
        job = await producer.enqueue_job("echo_try")
        assert job is not None
        await asyncio.sleep(3.0 if outlasting_retries else 1.5)
        proxy.resume()
        assert await job.result(timeout=15) == 1  # max_tries = 1, and the job ran: the lost claim used no try
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
        await worker.close()  # async_run leaves it to the caller, as arq's does
        await producer.aclose()


late_runs: list[str] = []


async def counted(ctx: dict[str, Any]) -> str:
    late_runs.append(ctx["job_id"])
    return "counted"


async def test_a_claim_answered_after_its_lease_does_not_start_a_job_that_ran_elsewhere(
    proxy: StallProxy, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # the late worker's claim reaches Redis and claims the job, but its reply is held past the 1 s lease (a socket
    # timeout longer than that, so redis-py waits for it, as a frozen worker would); meanwhile the claim lapses and
    # another worker runs the job. The reply must not start the job a second time, maybe while the other runs it.
    late_runs.clear()
    slow_link = RedisSettings.from_dsn(proxy.url, socket_timeout=10)
    late = Worker([counted], redis_settings=slow_link, lease=1, poll_delay=0.1, handle_signals=False)
    task = asyncio.create_task(late.async_run())
    producer = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        first = await producer.enqueue_job("counted")
        assert first is not None and await first.result(timeout=10) == "counted"  # the claim script is loaded
        proxy.lose_reply_to(CLAIM_SHA)
        job = await producer.enqueue_job("counted", _job_id="late")
        assert job is not None
        await wait_for_async(lambda: proxy.holding_replies())
        await asyncio.sleep(1.5)  # past the lease: the claim has lapsed
        other = Worker([counted], redis_settings=RedisSettings.from_dsn(redis_url), burst=True, handle_signals=False)
        try:
            await other.async_run()
        finally:
            await other.close()
        assert await job.result(timeout=5) == "counted" and late_runs.count("late") == 1
        with caplog.at_level(logging.WARNING):
            proxy.resume()  # the late reply arrives, 2.5 s after its claim
            await asyncio.sleep(1.0)
    finally:
        late.request_stop()
        await asyncio.wait_for(task, 30)
        await late.close()  # async_run leaves it to the caller, as arq's does
        await producer.aclose()
    assert late_runs.count("late") == 1, late_runs
    lost = [r.getMessage() for r in caplog.records if "late" in r.getMessage() and "claim" in r.getMessage()]
    assert len(lost) == 1, lost  # the late worker says it lost the claim, once


async def test_a_job_requeued_by_a_graceful_stop_keeps_its_try(
    redis_url: str, make_worker: Callable[..., Worker]
) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        jobs = [await pool.enqueue_job("sleepy") for _ in range(3)]
        worker = make_worker([sleepy], burst=False, max_tries=1)
        task = asyncio.create_task(worker.async_run())
        await wait_for_async(lambda: len(worker.running) == 3)
        await asyncio.sleep(0.2)  # the three functions have started
        worker.request_stop()  # "cancelled by the stop, will run again"
        await asyncio.wait_for(task, 30)
        second = make_worker([sleepy], max_tries=1, ctx={"hold": 0})
        await second.async_run()
        for job in jobs:
            assert job is not None and await job.result(timeout=5) == 1  # not "max 1 retries exceeded"
    finally:
        await pool.aclose()


async def wait_for_async(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.02)


# -- 4. a full Redis keeps draining --------------------------------------------------------------------------------


async def fill(client: Any) -> int:
    """Write junk until the server refuses writes; how many keys it took."""
    n = 0
    for size in (20_000, 100):  # big values, then small ones to the very limit
        while True:
            try:
                await client.set(f"junk:{n}", "x" * size)
            except redis.exceptions.OutOfMemoryError:
                break
            n += 1
    return n


@pytest.mark.parametrize("server_class", [ValkeyServer, RedisServer], ids=["valkey", "redis"])
async def test_a_full_redis_keeps_draining_and_says_why(
    server_class: type[ValkeyServer], caplog: pytest.LogCaptureFixture
) -> None:
    if server_class is RedisServer and not RedisServer.available():
        pytest.skip("needs Debian's redis-server")
    server = server_class(args=("--maxmemory", "8mb", "--maxmemory-policy", "noeviction")).start()
    try:
        settings = RedisSettings.from_dsn(server.url)
        pool = await create_pool(settings)
        try:
            jobs = [await pool.enqueue_job("echo_try") for _ in range(200)]
            assert await fill(pool) > 0
            with pytest.raises(redis.exceptions.OutOfMemoryError):  # the producer is told plainly
                await pool.enqueue_job("echo_try")
            worker = Worker([echo_try], redis_settings=settings, burst=True, handle_signals=False, poll_delay=0.05)
            try:
                with caplog.at_level(logging.WARNING):
                    await asyncio.wait_for(worker.async_run(), 60)
            finally:
                await worker.close()  # async_run leaves it to the caller, as arq's does
            assert await pool.zcard("arq:queue") == 0  # every job finished: the queue drained
            assert worker.jobs_complete == 200
            assert all(job is not None for job in jobs)
        finally:
            await pool.aclose()
    finally:
        server.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert "unreachable" not in " ".join(messages), messages
    memory = [m for m in messages if "out of memory" in m]
    assert len(memory) == 1, messages  # said once, with the real cause
    assert "results are not stored" in memory[0]


# -- 5. a payload that exits while it is decoded -------------------------------------------------------------------


class Exits:
    def __reduce__(self) -> tuple[Any, ...]:
        import sys

        return (sys.exit, ("a crafted payload",))


class Dies:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os._exit, (3,))


async def plant(pool: Any, job_id: str, argument: Any) -> None:
    payload = pickle.dumps({"t": None, "f": "echo_try", "a": (argument,), "k": {}, "et": timestamp_ms()})
    await pool.set("arq:job:" + job_id, payload, px=60_000)
    await pool.zadd("arq:queue", {job_id: timestamp_ms()})


async def test_a_payload_that_raises_system_exit_while_decoded_fails_alone(
    pool: Any, make_worker: Callable[..., Worker]
) -> None:
    await plant(pool, "exits", Exits())
    fine = await pool.enqueue_job("echo_try")
    worker = make_worker([echo_try])
    await asyncio.wait_for(worker.async_run(), 30)  # the worker lives on
    assert fine is not None and await fine.result(timeout=5) == 1
    info = await Job("exits", pool).result_info()
    assert info is not None and not info.success
    assert isinstance(info.result, JobExecutionFailed)
    assert "SystemExit" in str(info.result) and "decod" in str(info.result)


def test_a_payload_that_kills_its_worker_while_decoded_is_failed_once_out_of_tries(
    tmp_path: Path, redis_url: str
) -> None:
    (tmp_path / "claimtasks.py").write_text(TASKS + "\n\nasync def echo_try(ctx):\n    return ctx['job_try']\n")
    (tmp_path / "worker.toml").write_text(
        TOML.format(url=redis_url, max_tries=2) + '\n[functions.echo_try]\npath = "claimtasks:echo_try"\n'
    )

    async def go() -> None:
        pool = await create_pool(RedisSettings.from_dsn(redis_url))
        try:
            await plant(pool, "dies", Dies())
        finally:
            await pool.aclose()

    asyncio.run(go())
    exits = []
    for _ in range(4):  # every worker that decodes it dies; the one after max_tries fails it without decoding
        proc = WorkerProcess(tmp_path, "--burst")
        try:
            exits.append(proc.finish(timeout=30))
        finally:
            proc.end()
        info = asyncio.run(_result_or_none(redis_url, "dies"))
        if info is not None:
            break
        time.sleep(1.1)  # the dead worker's 1 s lease
    assert exits[:2] == [3, 3], exits
    assert exits[-1] == 0 and len(exits) == 3, exits
    assert info is not None and not info.success
    assert str(info.result) == "max 2 retries exceeded"


async def _result_or_none(url: str, job_id: str) -> Any:
    pool = await create_pool(RedisSettings.from_dsn(url))
    try:
        return await Job(job_id, pool).result_info()
    finally:
        await pool.aclose()
