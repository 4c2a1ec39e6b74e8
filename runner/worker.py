"""arq's ``arq.worker`` under runner: ``Worker``, ``func``, the control-flow exceptions and the settings-class
helpers (``run_worker``, ``create_worker``, ``get_kwargs``, ``check_health``)."""

from __future__ import annotations

from runner.engine.functions import Function, func
from runner.engine.health import async_check_health
from runner.engine.launch import check_health, create_worker, get_kwargs, no_result, run_worker
from runner.engine.worker import Worker, logger
from runner.errors import FailedJobs, JobExecutionFailed, Retry, RetryJob

__all__ = [
    "FailedJobs",
    "Function",
    "JobExecutionFailed",
    "Retry",
    "RetryJob",
    "Worker",
    "async_check_health",
    "check_health",
    "create_worker",
    "func",
    "get_kwargs",
    "logger",
    "no_result",
    "run_worker",
]
