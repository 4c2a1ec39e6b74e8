"""Item 5: dotted import strings, and functions given by path are named by the whole path."""

from __future__ import annotations

from typing import Any

from arq import create_pool, cron, func
from arq.connections import RedisSettings
from arq.utils import import_string
from arq.worker import Worker


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def tick(ctx: dict[str, Any]) -> None:
    return None


async def scenario(env: Any) -> None:
    env.observe("import_string", import_string("math.sqrt")(16))
    env.observe("import_string of this module", import_string("s05_dotted_paths.add") is add)
    try:
        import_string("nodots")
    except ImportError as exc:
        env.observe("import_string without a dot is an ImportError", bool(str(exc)))
    try:
        import_string("math.no_such_thing")
    except ImportError:
        env.observe("import_string of a missing attribute is an ImportError", True)
    by_path = func("s05_dotted_paths.add", timeout=3)
    env.observe("func by path", [by_path.name, by_path.coroutine is add, by_path.timeout_s])
    env.observe("cron by path", cron("s05_dotted_paths.tick", minute=5).name)
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    job = await redis.enqueue_job("s05_dotted_paths.add", 20, 22)
    worker = Worker(
        functions=["s05_dotted_paths.add"], redis_pool=redis, burst=True, poll_delay=0.05, handle_signals=False
    )
    env.observe("worker functions", sorted(worker.functions))
    await worker.main()
    await worker.close()
    env.observe("result", await job.result(timeout=5))
    await redis.aclose()
