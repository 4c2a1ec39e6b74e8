"""Scripts on the worker's hot path, called straight on a pool connection.

A claim call and an outcome batch are most of what a busy worker sends, a couple of calls per ten jobs. redis-py's
``execute_command`` adds about as much client time to each as the round trip itself: an observability record and
an event dispatched on every release among it. ``DirectScript`` keeps what matters of it and drops the rest:
a connection from the same pool, the connection's own retry (a dropped connection is ridden over and said once, as
for any command, see connection.py), the connection closed before a retry, and the script loaded again when the
server answers NOSCRIPT. Replies are the raw ``EVALSHA`` reply, as redis-py gives them for a script.

A client without a plain connection pool (the cluster client) calls the script the usual way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


class DirectScript(AsyncScript):
    """An ``AsyncScript`` whose calls skip redis-py's per-command bookkeeping (see the module docstring)."""

    async def __call__(
        self,
        keys: Sequence[Any] | None = None,
        args: Iterable[Any] | None = None,
        client: Any = None,
    ) -> Any:
        registered: Any = self.registered_client
        pool = getattr(registered, "connection_pool", None)
        # a cluster client, a pipeline, or a client pinned to one connection: the usual way
        if client is not None or not isinstance(pool, ConnectionPool) or getattr(registered, "connection", None):
            return await super().__call__(keys, args, client)
        command = ("EVALSHA", self.sha, len(keys or ()), *(keys or ()), *(args or ()))
        try:
            return await _call(pool, command)
        except NoScriptError:
            # the server lost its scripts (a restart, SCRIPT FLUSH): load this one again and call it once more
            self.sha = await registered.script_load(self.script)
            return await _call(pool, ("EVALSHA", self.sha, *command[2:]))


async def _call(pool: ConnectionPool, command: tuple[Any, ...]) -> Any:
    connection: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]

    async def attempt() -> Any:
        await connection.send_command(*command)
        return await connection.read_response()

    async def before_retry(_error: BaseException, *_count: int) -> None:
        await connection.disconnect()

    try:
        return await connection.retry.call_with_retry(attempt, before_retry)
    finally:
        await pool.release(connection)
