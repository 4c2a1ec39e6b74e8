"""Item 7: ``create_pool`` on a server that is not there raises what ``except RedisError`` catches, after its
retries, each logged as a warning."""

from __future__ import annotations

import socket
from typing import Any

from arq.connections import RedisSettings, create_pool
from redis.exceptions import ConnectionError as RedisConnectionError, RedisError

# runner's message names the address and the attempts; arq re-raises redis-py's own
DIFFERENCES = {
    "the message says how many attempts": {"arq": False, "runner": True, "doc": "human-messages"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def scenario(env: Any) -> None:
    port = _free_port()
    settings = RedisSettings(host="127.0.0.1", port=port, conn_retries=2, conn_retry_delay=0.01)
    try:
        await create_pool(settings)
    except RedisError as exc:
        env.observe("caught by except RedisError", True)
        env.observe("is a redis ConnectionError", isinstance(exc, RedisConnectionError))
        env.observe("message names the address", f"127.0.0.1:{port}" in str(exc))
        env.observe("the message says how many attempts", "after 3 attempts" in str(exc))
    env.observe("retry warnings", [r.levelname for r in env.records("arq.connections")])
