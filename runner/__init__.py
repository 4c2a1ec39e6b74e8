"""runner: declarative, config-driven asyncio job workers on Redis, wire-compatible with arq.

The engine's API is re-exported here with arq's names, so ``from arq import X`` becomes ``from runner import X``.
"""

from __future__ import annotations

from runner.engine import (
    ArqRedis,
    CronJob,
    FailedJobs,
    Function,
    Job,
    JobDef,
    JobExecutionFailed,
    JobResult,
    JobSpec,
    JobStatus,
    RedisSettings,
    ResultNotFound,
    Retry,
    RunnerRedis,
    SerializationError,
    Worker,
    async_check_health,
    check_health,
    create_pool,
    cron,
    func,
    get_serializer,
)

__version__ = "0.1.0"


__all__ = [
    "ArqRedis",
    "CronJob",
    "FailedJobs",
    "Function",
    "Job",
    "JobDef",
    "JobExecutionFailed",
    "JobResult",
    "JobSpec",
    "JobStatus",
    "RedisSettings",
    "ResultNotFound",
    "Retry",
    "RunnerRedis",
    "SerializationError",
    "Worker",
    "__version__",
    "async_check_health",
    "check_health",
    "create_pool",
    "cron",
    "func",
    "get_serializer",
]
