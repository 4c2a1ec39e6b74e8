"""The names no other scenario reaches: the module loggers, ``BaseRedis``, ``log_redis_info``, each constant by
name, the serializer types, ``no_result``, ``run_worker`` and the top-level re-exports."""

from __future__ import annotations

import logging
from typing import Any

import arq
from arq import ArqRedis, Retry, Worker, check_health, constants as c, create_pool
from arq.connections import BaseRedis, RedisSettings, log_redis_info, logger as connections_logger
from arq.jobs import Deserializer, Serializer, logger as jobs_logger
from arq.utils import logger as utils_logger
from arq.version import VERSION
from arq.worker import no_result, run_worker

DIFFERENCES = {
    "logger names": {
        "arq": ["arq.connections", "arq.jobs", "arq.utils"],
        "runner": ["runner.connections", "runner.jobs", "runner.utils"],
        "doc": "logger-names",
    },
    "VERSION": {"arq": "0.28.0", "runner": "0.1.0", "doc": "version"},
}


async def scenario(env: Any) -> None:
    env.observe("logger names", [connections_logger.name, jobs_logger.name, utils_logger.name])
    env.observe("loggers are loggers", all(isinstance(x, logging.Logger) for x in (connections_logger, jobs_logger)))
    env.observe("VERSION", VERSION)
    env.observe("ArqRedis is a BaseRedis", issubclass(ArqRedis, BaseRedis))
    env.observe(
        "top level",
        [
            arq.create_pool is create_pool,
            callable(arq.cron),
            arq.Retry is Retry,
            arq.Worker is Worker,
            arq.check_health is check_health,
            callable(run_worker),
        ],
    )
    # what `import arq` alone reaches, and names a module imports from another (arq.worker's RedisSettings)
    env.observe(
        "submodules and re-exports",
        [
            arq.worker.run_worker is run_worker,
            arq.connections.RedisSettings is RedisSettings,
            arq.jobs.Deserializer is Deserializer,
            arq.constants is c,
            arq.utils.logger is utils_logger,
            arq.typing.__name__.rsplit(".", 1)[1],
            arq.version.VERSION == VERSION,
            arq.worker.RedisSettings is RedisSettings,
            arq.worker.default_queue_name == c.default_queue_name,
            arq.connections.Job is arq.jobs.Job,
        ],
    )
    env.observe("serializer types", [Serializer is not None, Deserializer is not None])
    env.observe("no_result is a sentinel", type(no_result).__name__)
    env.observe(
        "constants",
        [
            c.default_queue_name,
            c.job_key_prefix,
            c.in_progress_key_prefix,
            c.result_key_prefix,
            c.retry_key_prefix,
            c.abort_jobs_ss,
            c.abort_job_max_age,
            c.health_check_key_suffix,
            c.keep_cronjob_progress,
            c.timezone_env_vars,
            c.expires_extra_ms,
        ],
    )
    redis = await create_pool(RedisSettings.from_dsn(env.url))
    lines: list[str] = []
    await log_redis_info(redis, lines.append)
    env.observe("log_redis_info", [part.split("=")[0] for part in lines[0].split()])
    await redis.aclose()
