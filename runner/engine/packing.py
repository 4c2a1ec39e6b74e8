"""Connections that pack commands in C: redis-py's connection classes, with hiredis's ``pack_command``.

redis-py packs a command in Python, one argument at a time (a few type checks and a copy of the buffer so far for
each), which is most of what the worker spends on a ``finish.lua`` call carrying a batch of outcomes (eleven
arguments per job) and on a bulk enqueue (eight per job). hiredis, already the reply parser, packs the same bytes
in C in a fifth of the time. What hiredis refuses (a bool, a bytearray, a command name in two words such as
``"CONFIG GET"``) goes through redis-py's own packing, so it is packed, or refused with the error redis-py gives,
exactly as before. The class names stay redis-py's: code that asks a pool which kind of connection it makes (a
socket file, TLS) reads the same answer.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio import connection as redis_connection


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


class Connection(_HiredisPacking, redis_connection.Connection):
    """redis-py's TCP connection, packing commands with hiredis."""


class SSLConnection(_HiredisPacking, redis_connection.SSLConnection):
    """redis-py's TLS connection, packing commands with hiredis."""


class UnixDomainSocketConnection(_HiredisPacking, redis_connection.UnixDomainSocketConnection):
    """redis-py's socket-file connection, packing commands with hiredis."""
