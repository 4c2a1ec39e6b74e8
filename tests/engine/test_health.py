"""The health reporter (runner/engine/health.py): arq's health line in the shared key and the worker's own."""

from __future__ import annotations

import re
from typing import Any

from runner.engine.client import RunnerRedis
from tests.support.parts import wired

Q = "arq:queue"
LINE = re.compile(rb"\w{3}-\d\d \d\d:\d\d:\d\d j_complete=0 j_failed=0 j_retried=0 j_ongoing=0 queued=2")


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def test_records_say_arqs_line_and_clearing_removes_only_the_workers_own(pool: RunnerRedis) -> None:
    await pool.enqueue_job("noop")
    await pool.enqueue_job("noop")
    async with wired(pool, [noop]) as (worker, parts):
        health, layout = parts.health, pool.key_layout
        own = layout.worker(Q, worker.worker_id)
        await health.record(shared=False)
        assert await pool.get(layout.health_check(Q)) is None
        await health.record()
        for key in (layout.health_check(Q), own):
            line = await pool.get(key)
            assert line is not None and LINE.fullmatch(line), line
        await health.clear_own()
        assert await pool.get(own) is None
        assert await pool.get(layout.health_check(Q)) is not None  # arq's shared key is close()'s
