"""Item 8: ``RedisSettings`` has arq's fields in arq's order (positional construction), with ``retry`` and
``retry_on_error`` handed to redis-py; ``from_dsn``."""

from __future__ import annotations

import dataclasses
from typing import Any

from arq.connections import RedisSettings, create_pool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError

ARQ_FIELDS = [
    "host",
    "port",
    "unix_socket_path",
    "database",
    "username",
    "password",
    "ssl",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_check_hostname",
    "conn_timeout",
    "conn_retries",
    "conn_retry_delay",
    "max_connections",
    "sentinel",
    "sentinel_master",
    "retry_on_timeout",
    "retry_on_error",
    "retry",
]

# the password is a secret: runner masks it in every output, repr included
DIFFERENCES = {
    "repr shows the password": {"arq": True, "runner": False, "doc": "password-repr"},
    # a TLS certificate is checked against the host name by default
    "ssl_check_hostname by default": {"arq": False, "runner": True, "doc": "tls-hostname"},
}


async def scenario(env: Any) -> None:
    positional = [f.name for f in dataclasses.fields(RedisSettings) if not f.kw_only]
    env.observe("positional fields", positional)
    env.observe("arq's fields in arq's order", positional[: len(ARQ_FIELDS)] == ARQ_FIELDS)
    defaults = RedisSettings()
    env.observe("ssl_check_hostname by default", defaults.ssl_check_hostname)
    same = [name for name in ARQ_FIELDS if name != "ssl_check_hostname"]
    env.observe("defaults", {name: getattr(defaults, name) for name in same})
    by_position = RedisSettings("h", 6380, None, 3, "user", "pw", True)
    env.observe("by position", [by_position.host, by_position.port, by_position.database, by_position.ssl])
    env.observe("repr shows the password", "'pw'" in repr(by_position))
    parsed = RedisSettings.from_dsn("rediss://u:p@cache:6390/4")
    env.observe("from_dsn", {name: getattr(parsed, name) for name in same})
    env.observe("from_dsn db query", RedisSettings.from_dsn("redis://localhost:6379?db=2").database)
    try:
        RedisSettings.from_dsn("http://localhost")
    except RuntimeError:
        env.observe("bad scheme is a RuntimeError", True)
    base = RedisSettings.from_dsn(env.url)
    retry = Retry(NoBackoff(), 3)
    settings = dataclasses.replace(base, retry=retry, retry_on_error=[RedisTimeoutError])
    pool = await create_pool(settings)
    kwargs = pool.connection_pool.connection_kwargs
    # redis-py keeps its own copy of the Retry
    env.observe("retry handed to redis-py", getattr(kwargs.get("retry"), "_retries", None))
    env.observe("retry_on_error handed to redis-py", RedisTimeoutError in kwargs.get("retry_on_error", []))
    env.observe("pool answers", await pool.ping())
    await pool.aclose()
