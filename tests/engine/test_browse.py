"""Reading queues page by page (runner.engine.browse) and steering them (runner.engine.steering)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from runner import RunnerRedis, Worker, func
from runner.engine.browse import (
    job_detail,
    job_page,
    minute_counts,
    queue_summaries,
    search_jobs,
)
from runner.engine.client import JobSpec
from runner.engine.steering import (
    Deleted,
    delete_job,
    purge_failed,
    request_abort,
    retry_all_failed,
    retry_failed,
)
from runner.engine.utils import timestamp_ms

MakeWorker = Callable[..., Worker]
Q = "arq:queue"


async def fails(ctx: dict[str, Any], n: int) -> None:
    raise ValueError(f"broken {n}")


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def sleeps(ctx: dict[str, Any], seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


async def summary(pool: RunnerRedis, **kwargs: Any) -> Any:
    return (await queue_summaries(pool, [Q], **kwargs))[0]


async def fail_jobs(pool: RunnerRedis, make_worker: MakeWorker, count: int, function: str = "fails") -> list[str]:
    jobs = await pool.enqueue_many([JobSpec(function, (n,)) for n in range(count)])
    await make_worker([fails, func(fails, name="fails_too")]).async_run()
    return [j.job_id for j in jobs if j is not None]


@pytest.mark.layouts
async def test_summary_counts_every_state(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    await fail_jobs(pool, make_worker, 3)
    running = await pool.enqueue_job("sleeps", 30)
    assert running is not None
    worker = make_worker([sleeps, add], burst=False, max_jobs=1)
    task = asyncio.create_task(worker.async_run())
    try:
        # the worker has claimed the job and written its first presence record (its health reporter does, apart)
        while (
            await pool.exists(
                pool.key_layout.in_progress(Q, running.job_id), pool.key_layout.worker_info(Q, worker.worker_id)
            )
            < 2
        ):
            await asyncio.sleep(0.01)
        # the worker's one slot is taken: what follows stays where it is put
        await pool.enqueue_many([JobSpec("add", (n, n)) for n in range(5)])
        await pool.enqueue_many([JobSpec("add", (n, n), defer_by=3600) for n in range(2)])
        # an arq worker keeps the score of the job it runs: a held key on a due job, as arq leaves it
        await pool.enqueue_job("add", 9, 9, _job_id="held-by-arq")
        await pool.zadd(pool.key_layout.queue(Q), {"held-by-arq": 1})
        await pool.set(pool.key_layout.in_progress(Q, "held-by-arq"), b"1", px=60_000)
        s = await summary(pool)
    finally:
        worker.request_stop()
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    assert (s.queued, s.deferred, s.in_progress, s.failed) == (5, 2, 2, 3)
    assert s.held_ids == sorted([running.job_id, "held-by-arq"])
    assert s.exact
    assert s.oldest_due_ms is not None and 0 <= s.oldest_due_age_s < 10
    assert [w.worker_id for w in s.workers] == [worker.worker_id] and s.workers_alive == 1


async def test_summary_oldest_due_skips_held_jobs_and_counts_arq_health(pool: RunnerRedis) -> None:
    now = timestamp_ms()
    await pool.enqueue_job("add", 1, 1, _job_id="first")
    await pool.enqueue_job("add", 1, 1, _job_id="second")
    await pool.zadd(pool.key_layout.queue(Q), {"first": now - 60_000, "second": now - 30_000})
    await pool.set(pool.key_layout.in_progress(Q, "first"), b"1")
    await pool.set(pool.key_layout.health_check(Q), b"Nov-23 10:00:00 j_complete=1")
    s = await summary(pool, now_ms=now)
    assert (s.queued, s.in_progress, s.held_ids) == (1, 1, ["first"])
    assert s.oldest_due_ms == now - 30_000
    assert s.workers_alive == 1 and s.arq_health.startswith("Nov-23")


async def test_summary_of_an_empty_queue(pool: RunnerRedis) -> None:
    s = await summary(pool)
    assert (s.queued, s.deferred, s.in_progress, s.failed, s.oldest_due_ms, s.workers_alive) == (0, 0, 0, 0, None, 0)


async def test_pages_walk_a_queue_by_position(pool: RunnerRedis) -> None:
    await pool.enqueue_many([JobSpec("add", (n, 0), job_id=f"j{n:03d}", defer_by=n / 1000) for n in range(120)])
    await pool.enqueue_many([JobSpec("other", (n,), job_id=f"o{n}") for n in range(3)])
    s = await summary(pool)
    seen: list[str] = []
    position: int | None = 0
    while position is not None:
        page = await job_page(pool, s, position=position, limit=50)
        assert page.total == 123
        seen += [r.job_id for r in page.rows]
        position = page.next_position
    assert len(seen) == len(set(seen)) == 123
    # a page that ends exactly at the end of the range has no next page
    last = await job_page(pool, s, position=73, limit=50)
    assert len(last.rows) == 50 and last.next_position is None
    only = await job_page(pool, s, function="other", limit=2)
    assert [r.function for r in only.rows] == ["other", "other"]
    rest = await job_page(pool, s, function="other", position=only.next_position or 0, limit=2)
    assert len(rest.rows) == 1 and rest.next_position is None


async def test_function_filter_stops_after_its_budget(pool: RunnerRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.engine import browse

    monkeypatch.setattr(browse, "SCAN_BUDGET", 100)
    await pool.enqueue_many([JobSpec("add", (n, 0)) for n in range(300)])
    page = await job_page(pool, await summary(pool), function="nothing-like-it", limit=10)
    assert page.rows == [] and page.budget_hit
    assert 100 <= page.examined < 300 and page.next_position == page.examined


async def test_state_views_and_undecodable_payloads(pool: RunnerRedis) -> None:
    await pool.enqueue_job("add", 1, 2, _job_id="due")
    await pool.enqueue_job("add", 1, 2, _job_id="later", _defer_by=600)
    await pool.zadd(pool.key_layout.queue(Q), {"garbage": 1})
    await pool.set(pool.key_layout.job(Q, "garbage"), b"\x80not a pickle")
    s = await summary(pool)
    queued = await job_page(pool, s, state="queued")
    assert {r.job_id for r in queued.rows} == {"due", "garbage"}
    broken = next(r for r in queued.rows if r.job_id == "garbage")
    assert broken.function == "?" and "unable to deserialize job" in (broken.error or "")
    deferred = await job_page(pool, s, state="deferred")
    assert [r.job_id for r in deferred.rows] == ["later"] and deferred.rows[0].status == "deferred"
    with pytest.raises(ValueError, match="unknown state"):
        await job_page(pool, s, state="sideways")


@pytest.mark.layouts
async def test_failed_view_newest_first_and_retry(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    ids = await fail_jobs(pool, make_worker, 4)
    s = await summary(pool)
    page = await job_page(pool, s, state="failed", limit=3)
    assert len(page.rows) == 3 and page.total == 4
    assert all(r.status == "failed" and "broken" in repr(r.result.result) for r in page.rows if r.result)
    finish = [r.result.finish_time for r in page.rows if r.result]
    assert finish == sorted(finish, reverse=True)
    report = await retry_failed(pool, Q, [ids[0], "no-such-job"])
    assert (report.retried, report.skipped) == (1, 1)
    assert await pool.zscore(pool.key_layout.queue(Q), ids[0]) is not None
    assert await pool.exists(pool.key_layout.result(Q, ids[0])) == 0
    assert (await summary(pool)).failed == 3
    # retrying it again finds no failed result any more
    assert (await retry_failed(pool, Q, [ids[0]])).retried == 0


async def test_retry_all_by_function_then_purge(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    await fail_jobs(pool, make_worker, 3)
    await fail_jobs(pool, make_worker, 2, function="fails_too")
    report = await retry_all_failed(pool, Q, function="fails_too")
    assert report.retried == 2
    assert await pool.zcard(pool.key_layout.queue(Q)) == 2
    assert await purge_failed(pool, Q) == 3
    assert (await summary(pool)).failed == 0
    assert [k async for k in pool.scan_iter(match="arq:result:*")] == []


@pytest.mark.layouts
async def test_delete_and_abort(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    waiting = await pool.enqueue_job("add", 1, 2, _defer_by=600)
    assert waiting is not None
    assert await delete_job(pool, Q, waiting.job_id) is Deleted.waiting
    assert await pool.exists(pool.key_layout.job(Q, waiting.job_id)) == 0
    assert await delete_job(pool, Q, waiting.job_id) is Deleted.nothing
    (failed,) = await fail_jobs(pool, make_worker, 1)
    assert await delete_job(pool, Q, failed) is Deleted.result
    assert (await summary(pool)).failed == 0
    await pool.set(pool.key_layout.in_progress(Q, "busy"), b"1")
    await pool.zadd(pool.key_layout.queue(Q), {"busy": 1})
    assert await delete_job(pool, Q, "busy") is Deleted.running
    await pool.delete(pool.key_layout.in_progress(Q, "busy"))
    assert await delete_job(pool, Q, "busy") is Deleted.waiting

    later = await pool.enqueue_job("sleeps", 1, _defer_by=600)
    assert later is not None
    await request_abort(pool, Q, later.job_id)
    detail = await job_detail(pool, later.job_id, [Q])
    assert detail is not None and detail.abort_requested_ms is not None
    assert detail.row.status == "queued"  # brought forward so a worker sees the abort now
    await make_worker([sleeps], allow_abort_jobs=True).async_run()
    gone = await job_detail(pool, later.job_id, [Q])
    assert gone is not None and gone.row.status == "failed" and gone.result_ttl_ms is not None


async def test_search_by_exact_and_partial_id(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    await pool.enqueue_job("add", 1, 2, _job_id="invoice-2024-0001")
    await pool.enqueue_job("add", 1, 2, _job_id="invoice-2024-0002")
    await pool.enqueue_job("add", 1, 2, _job_id="receipt*[x]")
    (failed,) = await fail_jobs(pool, make_worker, 1)
    assert [r.job_id for r in await search_jobs(pool, [Q], "invoice-2024-0002")] == ["invoice-2024-0002"]
    assert sorted(r.job_id for r in await search_jobs(pool, [Q], "2024-")) == ["invoice-2024-0001", "invoice-2024-0002"]
    # glob characters in the text are matched literally
    assert [r.job_id for r in await search_jobs(pool, [Q], "*[x")] == ["receipt*[x]"]
    assert [r.status for r in await search_jobs(pool, [Q], failed[:12])] == ["failed"]
    assert await search_jobs(pool, [Q], "   ") == []
    assert await search_jobs(pool, [Q], "nothing") == []


@pytest.mark.layouts
async def test_minute_counts_cover_the_hour(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    await fail_jobs(pool, make_worker, 1)
    await pool.enqueue_many([JobSpec("add", (n, n)) for n in range(4)])
    await make_worker([add]).async_run()
    counts = await minute_counts(pool, Q)
    assert len(counts) == 60
    assert counts[-1].minute_ms == timestamp_ms() // 60_000 * 60_000
    assert [c.minute_ms for c in counts] == sorted(c.minute_ms for c in counts)
    assert sum(c.complete for c in counts) == 4 and sum(c.failed for c in counts) == 1


@pytest.mark.layouts
async def test_recent_finishes_feed_the_complete_view(pool: RunnerRedis, make_worker: MakeWorker) -> None:
    from runner.engine.recent import RecentFinishes

    recent = RecentFinishes(pool, [Q], size=5)
    recent.start()
    try:
        channel = pool.key_layout.done_channel(Q)
        while (await pool.pubsub_numsub(channel))[0][1] < 1:
            await asyncio.sleep(0.01)
        jobs = await pool.enqueue_many([JobSpec("add", (n, n), job_id=f"a{n}") for n in range(4)])
        await make_worker([add]).async_run()
        while len(recent.ids(Q)) < 4:
            await asyncio.sleep(0.01)
        assert len(jobs) == 4 and sorted(recent.ids(Q)) == ["a0", "a1", "a2", "a3"]
        # an id heard twice is listed once, newest first; the oldest fall out past ``size`` entries
        recent.heard(channel, b"2:a9")
        recent.heard(channel, b"2:a9")
        assert recent.ids(Q)[0] == "a9" and recent.ids(Q).count("a9") == 1 and len(recent.ids(Q)) == 4
        page = await job_page(pool, await summary(pool), state="complete", recent_ids=recent.ids(Q), limit=2)
        # a9 has no result: it is left out, and the page is filled from the next ids
        assert [r.status for r in page.rows] == ["complete", "complete"] and "a9" not in [r.job_id for r in page.rows]
        assert page.rows[0].result is not None and page.rows[0].result.result in (0, 2, 4, 6)
    finally:
        await recent.close()
