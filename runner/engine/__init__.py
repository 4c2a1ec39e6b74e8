"""The asyncio engine: arq's API and wire format, on redis-py's asyncio client.

It imports nothing from ``runner.config`` or ``runner.cli``: it is usable on its own, and moving from arq is an
import change (``from arq import create_pool`` → ``from runner import create_pool``).
"""

from __future__ import annotations

from runner.engine.client import ArqRedis, JobSpec, RunnerRedis
from runner.engine.connection import RedisSettings, create_pool
from runner.engine.cron import CronJob, cron
from runner.engine.functions import Function, func
from runner.engine.job import Job, JobDef, JobResult, JobStatus
from runner.engine.serializers import get_serializer
from runner.engine.worker import Worker, async_check_health, check_health
from runner.errors import (
    FailedJobs,
    JobExecutionFailed,
    ResultNotFound,
    Retry,
    SerializationError,
)

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
    "async_check_health",
    "check_health",
    "create_pool",
    "cron",
    "func",
    "get_serializer",
]
