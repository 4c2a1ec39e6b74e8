"""The asyncio engine: arq's API and wire format, on redis-py's asyncio client.

It imports nothing from ``runner.config`` or ``runner.cli``: it is usable on its own, and moving from arq is an
import change (``from arq import create_pool`` → ``from runner import create_pool``; ``arq.worker`` →
``runner.worker`` and so on for each of arq's modules).

The names below are imported when first used, so ``import runner.engine.keys`` (or the ``runner`` command, which
only needs a few modules) does not pay for redis-py and the worker.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from runner.engine.logs import install_arq_twins

if TYPE_CHECKING:
    from runner.engine.client import ArqRedis as ArqRedis, JobSpec as JobSpec, RunnerRedis as RunnerRedis
    from runner.engine.connection import RedisSettings as RedisSettings, create_pool as create_pool
    from runner.engine.cron import CronJob as CronJob, cron as cron
    from runner.engine.functions import Function as Function, func as func
    from runner.engine.job import Job as Job, JobDef as JobDef, JobResult as JobResult, JobStatus as JobStatus
    from runner.engine.launch import (
        check_health as check_health,
        create_worker as create_worker,
        run_worker as run_worker,
    )
    from runner.engine.serializers import get_serializer as get_serializer
    from runner.engine.worker import Worker as Worker, async_check_health as async_check_health
    from runner.errors import (
        FailedJobs as FailedJobs,
        JobExecutionFailed as JobExecutionFailed,
        ResultNotFound as ResultNotFound,
        Retry as Retry,
        RetryJob as RetryJob,
        SerializationError as SerializationError,
    )

# public name -> the module that defines it (tests/test_architecture.py checks this against the imports above)
EXPORTS: dict[str, str] = {
    "ArqRedis": "runner.engine.client",
    "JobSpec": "runner.engine.client",
    "RunnerRedis": "runner.engine.client",
    "RedisSettings": "runner.engine.connection",
    "create_pool": "runner.engine.connection",
    "CronJob": "runner.engine.cron",
    "cron": "runner.engine.cron",
    "Function": "runner.engine.functions",
    "func": "runner.engine.functions",
    "Job": "runner.engine.job",
    "JobDef": "runner.engine.job",
    "JobResult": "runner.engine.job",
    "JobStatus": "runner.engine.job",
    "check_health": "runner.engine.launch",
    "create_worker": "runner.engine.launch",
    "run_worker": "runner.engine.launch",
    "get_serializer": "runner.engine.serializers",
    "Worker": "runner.engine.worker",
    "async_check_health": "runner.engine.worker",
    "FailedJobs": "runner.errors",
    "JobExecutionFailed": "runner.errors",
    "ResultNotFound": "runner.errors",
    "Retry": "runner.errors",
    "RetryJob": "runner.errors",
    "SerializationError": "runner.errors",
}

# written out, so that tools that read the source (mkdocstrings, a star import for type checkers) see the
# names; tests/test_architecture.py checks it is EXPORTS' keys
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
    "RetryJob",
    "RunnerRedis",
    "SerializationError",
    "Worker",
    "async_check_health",
    "check_health",
    "create_pool",
    "create_worker",
    "cron",
    "func",
    "get_serializer",
    "run_worker",
]


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # importing the submodule runner.engine.cron binds the module here, over the public function `cron` that
        # eager imports used to rebind right after; the public names stay what EXPORTS says
        if name in EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

# logging set up on arq's logger names applies to the engine's loggers from here on (logs.py imports only logging)
install_arq_twins()


def __getattr__(name: str) -> Any:
    module = EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runner.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *EXPORTS})
