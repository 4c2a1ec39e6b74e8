"""runner: declarative, config-driven asyncio job workers on Redis, wire-compatible with arq.

The engine's API is re-exported here with arq's names, so ``from arq import X`` becomes ``from runner import X``.
Each name is imported when first used (see :mod:`runner.engine`), so the ``runner`` command starts quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.engine import __all__ as _engine_names

if TYPE_CHECKING:  # the engine's public names are this package's (tests/test_architecture.py checks the list)
    from runner.engine import (
        ArqRedis as ArqRedis,
        CronJob as CronJob,
        FailedJobs as FailedJobs,
        Function as Function,
        Job as Job,
        JobDef as JobDef,
        JobExecutionFailed as JobExecutionFailed,
        JobResult as JobResult,
        JobSpec as JobSpec,
        JobStatus as JobStatus,
        RedisSettings as RedisSettings,
        ResultNotFound as ResultNotFound,
        Retry as Retry,
        RunnerRedis as RunnerRedis,
        SerializationError as SerializationError,
        Worker as Worker,
        async_check_health as async_check_health,
        check_health as check_health,
        create_pool as create_pool,
        cron as cron,
        func as func,
        get_serializer as get_serializer,
    )

__version__ = "0.1.0"

__all__ = [*_engine_names, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _engine_names:
        from runner import engine

        value = getattr(engine, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'runner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_engine_names})
