"""The key layout (runner/engine/keys.py): arq's names byte for byte, and a second layout the scripts take as is."""

from __future__ import annotations

import asyncio
from typing import Any

from runner import RedisSettings, Worker, create_pool
from runner.engine.inspection import queue_stats
from runner.engine.keys import ARQ_LAYOUT, KeyLayout
from runner.engine.steering import purge_queue


def test_arq_layout_is_arqs_byte_for_byte() -> None:
    layout, q = ARQ_LAYOUT, "arq:queue"
    assert [
        layout.queue(q),
        layout.job(q, "j"),
        layout.in_progress(q, "j"),
        layout.result(q, "j"),
        layout.retry(q, "j"),
        layout.abort(q),
        layout.health_check(q),
    ] == [
        "arq:queue",
        "arq:job:j",
        "arq:in-progress:j",
        "arq:result:j",
        "arq:retry:j",
        "arq:abort",
        "arq:queue:health-check",
    ]
    # runner's own keys live under runner:, where arq never looks
    assert [
        layout.wake(q),
        layout.done_channel(q),
        layout.unique(q, "j"),
        layout.worker(q, "w1"),
        layout.health_writer(q),
        layout.stats(q, 7),
        layout.cron_last(q, "cron:f"),
        layout.enqueued(q, "t0k"),
        layout.claimed(q, "w1.c0:1"),
        layout.failed(q),
        layout.failed_expiry(q),
        layout.presence(q),
        layout.worker_info(q, "w1"),
    ] == [
        "runner:wake:arq:queue",
        "runner:done:arq:queue",
        "runner:unique:j",
        "runner:workers:arq:queue:w1",
        "runner:health-writer:arq:queue",
        "runner:stats:arq:queue:7",
        "runner:cron:last:cron:f",
        "runner:enqueued:t0k",
        "runner:claimed:w1.c0:1",
        "runner:failed:arq:queue",
        "runner:failed-expiry:arq:queue",
        "runner:presence:arq:queue",
        "runner:worker-info:arq:queue:w1",
    ]


class TaggedLayout(KeyLayout):
    """Every key of a queue under one hash tag, as a Redis Cluster layout would put them."""

    name = "tagged"

    def queue(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:queue"

    def abort(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:abort"

    def health_check(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:health-check"

    def wake(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:wake"

    def done_channel(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:done"

    def stats(self, queue_name: str, minute: int) -> str:
        return f"{{{queue_name}}}:stats:{minute}"

    def workers_prefix(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:workers:"

    def health_writer(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:health-writer"

    def cron_last(self, queue_name: str, cron_name: str) -> str:
        return f"{{{queue_name}}}:cron-last:{cron_name}"

    def enqueued(self, queue_name: str, call_token: str) -> str:
        return f"{{{queue_name}}}:enqueued:{call_token}"

    def claimed(self, queue_name: str, holder_token: str) -> str:
        return f"{{{queue_name}}}:claimed:{holder_token}"

    def failed(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:failed"

    def failed_expiry(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:failed-expiry"

    def presence(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:presence"

    def worker_info(self, queue_name: str, worker_id: str) -> str:
        return f"{{{queue_name}}}:worker-info:{worker_id}"

    def job_prefix(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:job:"

    def in_progress_prefix(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:in-progress:"

    def result_prefix(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:result:"

    def retry_prefix(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:retry:"

    def unique_prefix(self, queue_name: str) -> str:
        return f"{{{queue_name}}}:unique:"


async def double(ctx: dict[str, Any], x: int) -> int:
    return 2 * x


async def test_a_second_layout_needs_no_script_change(redis_url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name="q", key_layout=TaggedLayout())
    try:
        job = await pool.enqueue_job("double", 21, _unique_for=60)
        assert job is not None
        worker = Worker([double], queue_name="q", redis_pool=pool, burst=True, handle_signals=False, poll_delay=0.05)
        run = asyncio.create_task(worker.async_run())
        assert await job.result(timeout=10) == 42
        await asyncio.wait_for(run, 10)
        assert worker.jobs_complete == 1
        assert await pool.enqueue_job("double", 1, _defer_by=3600) is not None
        stats = await queue_stats(pool, "q")
        assert (stats.deferred, stats.recent["complete"]) == (1, 1)
        assert (await purge_queue(pool, "q")).deleted == 1
        every_key = sorted([k.decode() async for k in pool.scan_iter(match="*")])
        assert every_key
        assert all(key.startswith("{q}:") for key in every_key), every_key
    finally:
        await pool.aclose()
