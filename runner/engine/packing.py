"""Connections that pack commands in C: redis-py's connection classes, with hiredis's ``pack_command``.

redis-py packs a command in Python, one argument at a time (a few type checks and a copy of the buffer so far for
each), which is most of what the worker spends on a ``finish.lua`` call carrying a batch of outcomes (eleven
arguments per job) and on a bulk enqueue (eight per job). hiredis, already the reply parser, packs the same bytes
in C in a fifth of the time. What hiredis refuses (a bool, a bytearray, a command name in two words such as
``"CONFIG GET"``) goes through redis-py's own packing, so it is packed, or refused with the error redis-py gives,
exactly as before. The class names stay redis-py's: code that asks a pool which kind of connection it makes (a
socket file, TLS) reads the same answer.

They also send without a timer when they can. redis-py wraps every write in ``asyncio.wait_for`` when the
connection has a ``socket_timeout``, which on Python 3.11 makes a task and a timer for each command, though a write
only ever waits when the socket's buffer is full. These write first and wait (with the same timeout and the same
errors) only when bytes are left over, or the connection is closing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
from redis.asyncio import connection as redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0] if args else None
        encoder = getattr(self, "encoder", None)
        if isinstance(first, str) and " " not in first and getattr(encoder, "encoding", "utf-8") == "utf-8":
            try:
                return [hiredis.pack_command(args)]
            except (TypeError, UnicodeEncodeError):
                pass
        packed: list[bytes] = super().pack_command(*args)  # type: ignore[misc]
        return packed

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        writer: asyncio.StreamWriter | None = getattr(self, "_writer", None)
        health_due = check_health and bool(getattr(self, "health_check_interval", 0))
        if writer is None or health_due or writer.transport.is_closing() or not isinstance(command, list | bytes):
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
            return
        writer.writelines([command] if isinstance(command, bytes) else command)
        transport = writer.transport
        if transport.get_write_buffer_size() == 0 and not transport.is_closing():
            return  # the socket took every byte: nothing to wait for
        await self._drain(writer)

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        """Wait for the socket to take what is left, as redis-py's own write does: within ``socket_timeout``, and a
        failure closes the connection."""
        timeout: float | None = getattr(self, "socket_timeout", None)
        try:
            if timeout:
                await asyncio.wait_for(writer.drain(), timeout)
            else:
                await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise RedisConnectionError(f"Error while writing to socket. {exc}.") from exc
        except BaseException:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise


class Connection(_HiredisPacking, redis_connection.Connection):
    """redis-py's TCP connection, packing commands with hiredis."""


class SSLConnection(_HiredisPacking, redis_connection.SSLConnection):
    """redis-py's TLS connection, packing commands with hiredis."""


class UnixDomainSocketConnection(_HiredisPacking, redis_connection.UnixDomainSocketConnection):
    """redis-py's socket-file connection, packing commands with hiredis."""
