"""arq's ``arq.connections`` under runner (``from arq.connections import X`` → ``from runner.connections import X``).

``ArqRedis`` is runner's ``RunnerRedis``; ``create_pool`` raises ``RedisUnavailable`` (a redis-py
``ConnectionError``) once its retries are spent.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis as BaseRedis

from runner.engine.client import ArqRedis, RunnerRedis
from runner.engine.connection import RedisSettings, create_pool, log_redis_info

logger = logging.getLogger("runner.connections")

__all__ = ["ArqRedis", "BaseRedis", "RedisSettings", "RunnerRedis", "create_pool", "log_redis_info", "logger"]
