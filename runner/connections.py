"""arq's ``arq.connections`` under runner (``from arq.connections import X`` → ``from runner.connections import X``).

``ArqRedis`` is runner's ``RunnerRedis``; ``create_pool`` raises ``RedisUnavailable`` (a redis-py
``ConnectionError``) once its retries are spent.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis as BaseRedis

from runner.constants import default_queue_name, expires_extra_ms, job_key_prefix, result_key_prefix
from runner.engine.client import ArqRedis, RunnerRedis
from runner.engine.connection import RedisSettings, create_pool, log_redis_info
from runner.jobs import Deserializer, Job, JobDef, JobResult, Serializer, deserialize_job, serialize_job
from runner.utils import timestamp_ms, to_ms, to_unix_ms

logger = logging.getLogger("runner.connections")

__all__ = [
    "ArqRedis",
    "BaseRedis",
    "RedisSettings",
    "RunnerRedis",
    "create_pool",
    "log_redis_info",
    "logger",
    # arq.connections imports these from its sibling modules, so arq code may import them from here too
    "Deserializer",
    "Job",
    "JobDef",
    "JobResult",
    "Serializer",
    "default_queue_name",
    "deserialize_job",
    "expires_extra_ms",
    "job_key_prefix",
    "result_key_prefix",
    "serialize_job",
    "timestamp_ms",
    "to_ms",
    "to_unix_ms",
]
