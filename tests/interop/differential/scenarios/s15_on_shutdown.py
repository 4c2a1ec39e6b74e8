"""Item 15: ``on_shutdown`` runs in ``close()``, not at the end of ``main()``/``async_run()``, as in arq."""

from __future__ import annotations

from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

EVENTS: list[str] = []


def hook(name: str) -> Any:
    async def record(ctx: dict[str, Any]) -> None:
        EVENTS.append(f"{name}:{ctx.get('job_id', '-')}:{'redis' in ctx}")

    return record


async def job(ctx: dict[str, Any]) -> None:
    EVENTS.append(f"job:{ctx['job_id']}:{sorted(ctx)}")


async def scenario(env: Any) -> None:
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    await redis.enqueue_job("job", _job_id="j1")
    worker = Worker(
        [job],
        redis_pool=redis,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        on_startup=hook("on_startup"),
        on_shutdown=hook("on_shutdown"),
        on_job_start=hook("on_job_start"),
        on_job_end=hook("on_job_end"),
        after_job_end=hook("after_job_end"),
        ctx={"mine": 1},
    )
    await worker.async_run()
    env.observe("after async_run", list(EVENTS))
    await worker.close()
    env.observe("after close", EVENTS[-1])
    await worker.close()
    env.observe("a second close", len(EVENTS))

    own = Worker(
        [job],
        redis_settings=RedisSettings.from_dsn(env.url),
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        on_shutdown=hook("own pool shutdown"),
    )
    await own.main()
    await own.close()
    env.observe("own pool", EVENTS[-1])
    await redis.aclose()
