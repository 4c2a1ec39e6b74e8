"""Redis URLs: the one parser of them, with no redis-py import, so ``runner validate`` can check a URL (and
find an embedded server's directory) without paying for the client it never uses."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from runner.engine.utils import credentials_problem

SCHEMES = ("redis", "rediss", "unix", "embedded")


class RedisUrlError(ValueError):
    """What is wrong with a Redis URL, as one clause (``has a port that is not a number``)."""


def parse_redis_url(dsn: str) -> dict[str, Any]:
    """The ``RedisSettings`` fields a Redis URL gives (the one parser of them; config/types.py checks with it).

    Raises:
        RedisUrlError: the URL cannot be used; its message is a clause that follows the URL.
    """
    problem = credentials_problem(dsn)
    if problem:
        raise RedisUrlError(problem)
    parsed = urlparse(dsn)
    if parsed.scheme not in SCHEMES:
        raise RedisUrlError("has an unsupported scheme; use redis://, rediss://, unix:// or embedded://")
    query = parse_qs(parsed.query)
    kwargs: dict[str, Any] = {}
    if parsed.scheme == "embedded":
        kwargs["embedded_dir"] = unquote(parsed.netloc + parsed.path) or ".runner"
    elif parsed.scheme == "unix":
        if not parsed.path:
            raise RedisUrlError("names no socket path; use unix:///path/to/socket")
        kwargs["unix_socket_path"] = unquote(parsed.path)
    else:
        try:
            port = parsed.port
        except ValueError as exc:  # urllib says which: "out of range" or "could not be cast to integer"
            raise RedisUrlError(
                "has a port out of range 1-65535" if "out of range" in str(exc) else "has a port that is not a number"
            ) from None
        kwargs["host"] = parsed.hostname or "localhost"
        kwargs["port"] = port or 6379
        kwargs["ssl"] = parsed.scheme == "rediss"
        if db_path := parsed.path.lstrip("/"):
            kwargs["database"] = _database(db_path)
    if "db" in query:
        kwargs["database"] = _database(query["db"][0])
    if parsed.username:
        kwargs["username"] = unquote(parsed.username)
    if parsed.password:
        kwargs["password"] = unquote(parsed.password)
    if "ssl_cert_reqs" in query:
        kwargs["ssl_cert_reqs"] = query["ssl_cert_reqs"][0]
    return kwargs


def _database(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise RedisUrlError(f'has a database "{value}" that is not a number') from None
