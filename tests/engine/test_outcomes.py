"""The outcome writer (runner/engine/outcomes.py): outcomes that arrive together land in one finish.lua call."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runner.engine import scripts
from runner.engine.client import RunnerRedis
from runner.engine.lifecycle import Lifecycle, Outage
from runner.engine.outcomes import OutcomeWriter
from runner.engine.protocol import Outcome, OutcomeKind

Q = "arq:queue"


async def claimed(pool: RunnerRedis, holders: dict[str, str]) -> None:
    layout = pool.key_layout
    for job_id, holder in holders.items():
        await pool.set(layout.job(Q, job_id), b"payload")
        await pool.set(layout.in_progress(Q, job_id), holder)
        await pool.zadd(layout.queue(Q), {job_id: 1})


def writer_on(pool: RunnerRedis) -> OutcomeWriter:
    lifecycle = Lifecycle()
    return OutcomeWriter(
        script=pool.register_script(scripts.FINISH),
        layout=pool.key_layout,
        queue_name=Q,
        lifecycle=lifecycle,
        outage=Outage(lifecycle, "test server"),
    )


async def finish_calls(pool: RunnerRedis) -> int:
    stats = await pool.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in {"cmdstat_evalsha", "cmdstat_eval"})


async def test_outcomes_written_together_are_one_call(pool: RunnerRedis) -> None:
    await claimed(pool, {"a": "t", "b": "t"})
    writer, layout = writer_on(pool), pool.key_layout
    await pool.script_load(scripts.FINISH)  # so the count below is not a NOSCRIPT reply and its resend
    before = await finish_calls(pool)
    await writer.write(Outcome("a", OutcomeKind.COMPLETE, b"result", 60_000, token="t"))
    await writer.write(Outcome("b", OutcomeKind.RETRY, score=1234, token="t"), wait=True)
    assert not writer.busy
    assert await finish_calls(pool) - before == 1
    assert await pool.get(layout.result(Q, "a")) == b"result"
    assert await pool.zrange(layout.queue(Q), 0, -1, withscores=True) == [(b"b", 1234.0)]
    assert await pool.exists(layout.in_progress(Q, "a"), layout.in_progress(Q, "b")) == 0


async def test_an_outcome_for_a_claim_held_elsewhere_is_dropped_and_said(
    pool: RunnerRedis, caplog: pytest.LogCaptureFixture
) -> None:
    await claimed(pool, {"a": "other worker"})
    writer, layout = writer_on(pool), pool.key_layout
    with caplog.at_level(logging.WARNING, logger="runner.worker"):
        await writer.write(Outcome("a", OutcomeKind.COMPLETE, b"result", 60_000, token="t"), wait=True)
    assert await pool.get(layout.result(Q, "a")) is None
    assert await pool.get(layout.in_progress(Q, "a")) == b"other worker"
    assert ["its outcome here (complete) was dropped" in r.getMessage() for r in caplog.records] == [True]


async def test_deferred_outcomes_wait_for_resume_and_a_waiting_one_ends_the_hold(pool: RunnerRedis) -> None:
    # the poll loop holds outcomes back while it waits for a slot, so its claim reaches Redis first (poll.py)
    await claimed(pool, {"a": "t", "b": "t", "c": "t"})
    writer, layout = writer_on(pool), pool.key_layout
    writer.defer()
    await writer.write(Outcome("a", OutcomeKind.COMPLETE, b"ra", 60_000, token="t"))
    await asyncio.sleep(0.05)
    assert writer.busy  # held, not lost: a burst worker waits for it
    assert await pool.exists(layout.result(Q, "a")) == 0
    writer.resume()
    await writer.wait_idle()
    assert await pool.get(layout.result(Q, "a")) == b"ra"
    # an outcome its job waits for is never held (the job keeps its slot until it lands)
    writer.defer()
    await asyncio.wait_for(writer.write(Outcome("b", OutcomeKind.COMPLETE, b"rb", 60_000, token="t"), wait=True), 5)
    assert await pool.get(layout.result(Q, "b")) == b"rb"
    # and wait_idle ends a hold too
    writer.defer()
    await writer.write(Outcome("c", OutcomeKind.COMPLETE, b"rc", 60_000, token="t"))
    await asyncio.wait_for(writer.wait_idle(), 5)
    assert await pool.get(layout.result(Q, "c")) == b"rc"
    assert not writer.busy
