"""arq's ``arq.worker`` under runner: ``Worker``, ``func``, the control-flow exceptions and the settings-class
helpers (``run_worker``, ``create_worker``, ``get_kwargs``, ``check_health``)."""

from __future__ import annotations

from runner.connections import ArqRedis, RedisSettings, create_pool, log_redis_info
from runner.constants import (
    abort_job_max_age,
    abort_jobs_ss,
    default_queue_name,
    expires_extra_ms,
    health_check_key_suffix,
    in_progress_key_prefix,
    job_key_prefix,
    keep_cronjob_progress,
    result_key_prefix,
    retry_key_prefix,
)
from runner.cron import CronJob
from runner.engine.functions import Function, func
from runner.engine.health import async_check_health
from runner.engine.launch import check_health, create_worker, get_kwargs, no_result, run_worker
from runner.engine.worker import Worker, logger
from runner.errors import FailedJobs, JobExecutionFailed, Retry, RetryJob
from runner.jobs import Deserializer, JobResult, SerializationError, Serializer, deserialize_job_raw, serialize_result
from runner.utils import (
    args_to_string,
    import_string,
    ms_to_datetime,
    poll,
    timestamp_ms,
    to_ms,
    to_seconds,
    to_unix_ms,
    truncate,
)

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
    # arq.worker imports these from its sibling modules, so arq code may import them from here too
    "ArqRedis",
    "CronJob",
    "Deserializer",
    "JobResult",
    "RedisSettings",
    "SerializationError",
    "Serializer",
    "abort_job_max_age",
    "abort_jobs_ss",
    "args_to_string",
    "create_pool",
    "default_queue_name",
    "deserialize_job_raw",
    "expires_extra_ms",
    "health_check_key_suffix",
    "import_string",
    "in_progress_key_prefix",
    "job_key_prefix",
    "keep_cronjob_progress",
    "log_redis_info",
    "ms_to_datetime",
    "poll",
    "result_key_prefix",
    "retry_key_prefix",
    "serialize_result",
    "timestamp_ms",
    "to_ms",
    "to_seconds",
    "to_unix_ms",
    "truncate",
]
