"""Connecting to Redis: ``RedisSettings`` (arq's fields), ``create_pool`` and ``log_redis_info``."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import ssl as ssl_module
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field, fields, replace
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool
from redis.asyncio.retry import Retry as RedisRetry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import AuthenticationError, ConnectionError as RedisConnectionError, RedisError

from runner.engine.client import RunnerRedis
from runner.engine.keys import (
    ARQ_LAYOUT,
    CLUSTER_LAYOUT,
    KeyLayout,
    check_shards,
    default_queue_name,
    expires_extra_ms_default,
)
from runner.engine.packing import Connection, SSLConnection, UnixDomainSocketConnection
from runner.engine.serializers import Deserializer, Serializer
from runner.engine.urls import RedisUrlError, parse_redis_url
from runner.engine.utils import mask_url
from runner.errors import (
    AuthenticationFailed,
    InvalidArgument,
    InvalidRedisUrl,
    PoolExhausted,
    RedisUnavailable,
    adopt_redis_errors,
)

logger = logging.getLogger("runner.connections")

adopt_redis_errors(RedisConnectionError)  # RedisUnavailable and PoolExhausted are redis-py's ConnectionError too

DEFAULT_MAX_CONNECTIONS = 100  # redis-py's own default, kept


@dataclass
class RedisSettings:
    """Where and how to reach Redis; the fields, their order and their defaults are arq's (but see TLS below).

    ``host`` may be a list of ``(host, port)`` pairs of sentinels when ``sentinel`` is true. ``retry`` (a redis-py
    ``Retry``) and ``retry_on_error`` (exception classes) go to redis-py as given; without ``retry`` a short
    backoff rides over a dropped connection (but never retries refused credentials). ``max_connections`` caps the
    pool's connections (default 100). TLS checks the server's certificate and host name by default;
    ``ssl_check_hostname=False`` turns the host name check off (arq's default), ``ssl_cert_reqs="none"`` both.

    The runner-only fields are keyword-only, after arq's: ``socket_timeout`` bounds every reply, so a server that
    stops answering gives an error instead of a hang (a worker keeps its blocking waits shorter; None waits for
    ever); a call that finds every connection busy waits up to ``pool_timeout`` seconds (None: for ever) for one to
    come free, then fails with ``PoolExhausted``; ``embedded_dir`` names the data directory of an embedded server
    (``embedded://DIR`` URLs); ``shards`` names the queues split over several shards (queue name -> shard count,
    cluster layout only: docs/cluster.md), so enqueues spread their jobs and ``Job`` handles find them.
    """

    host: str | list[tuple[str, int]] = "localhost"
    port: int = 6379
    unix_socket_path: str | None = None
    database: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None
    ssl_ca_data: str | None = None
    ssl_check_hostname: bool = True
    conn_timeout: float = 1
    conn_retries: int = 5
    conn_retry_delay: float = 1
    max_connections: int | None = None
    sentinel: bool = False
    sentinel_master: str = "mymaster"
    retry_on_timeout: bool = False
    retry_on_error: list[type[Exception]] | None = None
    retry: RedisRetry | None = None
    _: KW_ONLY
    socket_timeout: float | None = 5
    pool_timeout: float | None = 10
    embedded_dir: str | None = None
    cluster: bool = False
    shards: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_dsn(cls, dsn: str, **overrides: Any) -> RedisSettings:
        """Settings from a URL: ``redis://[user:password@]host[:port][/db]``, ``rediss://…`` (TLS),
        ``unix:///path/to/socket[?db=N]`` or ``embedded://DIR``.

        Raises:
            InvalidRedisUrl: the scheme is not one of these, the port or database is not a number, or the password
                holds a character that must be URL-encoded (a ``ConfigError``, and a ``RuntimeError`` as arq
                raises).
        """
        try:
            kwargs = parse_redis_url(dsn)
        except RedisUrlError as exc:
            raise InvalidRedisUrl(f'Redis URL "{mask_url(dsn)}" {exc}.') from None
        kwargs.update(overrides)
        return cls(**kwargs)

    def describe(self) -> str:
        """Where these settings point, with the password masked: safe for logs and banners."""
        if self.embedded_dir is not None:
            return f"embedded://{self.embedded_dir}"
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}{':***' if self.password else ''}@"
        if self.unix_socket_path:
            return f"unix://{auth}{self.unix_socket_path}?db={self.database}"
        if self.sentinel:
            hosts = self.host if isinstance(self.host, list) else [(self.host, self.port)]
            joined = ",".join(f"{h}:{p}" for h, p in hosts)
            return f"redis+sentinel://{auth}{joined}/{self.sentinel_master}/{self.database}"
        scheme = "rediss" if self.ssl else "redis"
        if self.cluster:
            return f"{scheme}://{auth}{self.host}:{self.port} (cluster)"
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.database}"

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={'***' if f.name == 'password' and self.password else repr(getattr(self, f.name))}"
            for f in fields(self)
        )
        return f"RedisSettings({shown})"


class _Trouble:
    """Connection trouble that redis-py's retries rode over, reported once per outage.

    A dropped connection (a connection-kill storm, a proxy restart) or a reply later than ``socket_timeout`` (a
    stalled network) makes redis-py reconnect and send the call again; when that works, the caller sees nothing.
    So the pool says it here: one line when a call is answered after such a failure, none for the next ones until
    calls have run clean for ``QUIET_S``. When the retries run out instead, the caller gets the error and reports
    the outage itself (a worker logs "redis unreachable"), so this line is left out.
    """

    QUIET_S = 10.0

    def __init__(self) -> None:
        self.where = "redis"
        self._until = -1.0
        self._reported = False

    def failed(self) -> None:
        now = time.monotonic()
        if now > self._until:  # a new outage
            self._reported = False
        self._until = now + self.QUIET_S

    def gave_up(self) -> None:
        self._reported = True  # the caller has the error; it is the caller's to tell

    def rode_over(self, error: BaseException) -> None:
        if not self._reported:
            self._reported = True
            logger.warning(
                "redis at %s: connection dropped or a reply took longer than socket_timeout (%s: %s); the call was "
                "sent again and answered (logged once per outage)",
                self.where,
                type(error).__name__,
                error,
            )


class _Retry(RedisRetry):
    """redis-py's retry of a dropped connection, never of refused credentials (they are no outage), and one log
    line when it rides over trouble (``_Trouble``)."""

    def __init__(self, *args: Any, trouble: _Trouble | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trouble = trouble or _Trouble()

    def __deepcopy__(self, memo: dict[int, Any]) -> _Retry:
        # redis-py copies the retry into every connection; they all report to the pool's one _Trouble
        return _Retry(copy.deepcopy(self._backoff, memo), self._retries, self._supported_errors, trouble=self.trouble)

    async def call_with_retry(
        self, do: Any, fail: Any, is_retryable: Any = None, with_failure_count: bool = False
    ) -> Any:
        errors: list[BaseException] = []

        def retryable(error: Exception) -> bool:
            if isinstance(error, AuthenticationError):
                return False
            return is_retryable is None or bool(is_retryable(error))

        async def on_failure(error: Exception, *count: int) -> Any:
            errors.append(error)
            self.trouble.failed()
            return await fail(error, *count)

        try:
            result = await super().call_with_retry(do, on_failure, retryable, with_failure_count)
        except BaseException:
            if errors:
                self.trouble.gave_up()
            raise
        if errors:
            self.trouble.rode_over(errors[0])
        return result


class WaitingConnectionPool(BlockingConnectionPool):
    """A pool whose callers wait for a free connection when all ``max_connections`` are busy.

    redis-py's own pool raises ``MaxConnectionsError`` at once; this one waits up to ``timeout`` seconds and
    then raises ``PoolExhausted``, which says what to change.
    """

    description = "redis"

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        if self.can_get_connection() and not self._condition.locked() and not self._in_maintenance:
            # a connection is free (or may be made) now: take it without the condition and the timeout, which cost
            # more than the rest of a command's client side (a waiter woken meanwhile finds none and waits again)
            connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
            try:
                await self.ensure_connection(connection)
            except BaseException:
                await self.release(connection)
                raise
            return connection
        try:
            return cast(AbstractConnection, await super().get_connection())  # type: ignore[no-untyped-call]
        except RedisConnectionError as exc:
            if not isinstance(exc.__cause__, asyncio.TimeoutError | TimeoutError):
                raise
            raise PoolExhausted(
                f"All {self.max_connections} connections to {self.description} were busy for {self.timeout:g}s; "
                "raise max_connections (or pool_timeout), or make fewer calls at once on this pool."
            ) from None


class _WaitingSentinelPool(SentinelConnectionPool, WaitingConnectionPool):
    """The sentinel pool, waiting like ``WaitingConnectionPool`` when it is full."""


def _connection_kwargs(settings: RedisSettings) -> dict[str, Any]:
    """What every connection of the pool is made with."""
    kwargs: dict[str, Any] = {
        "db": settings.database,
        "username": settings.username,
        "password": settings.password,
        "socket_timeout": settings.socket_timeout,
        "decode_responses": False,
        # a quick retry rides over a dropped connection; longer outages are the caller's to wait out, so that
        # create_pool's own retries and the worker's outage handling stay in charge of the pace
        "retry": settings.retry or _Retry(ExponentialBackoff(cap=0.5, base=0.05), 2, trouble=_Trouble()),
    }
    if settings.retry_on_timeout:  # redis-py 6+ retries timeouts by default and warns about the flag
        kwargs["retry_on_timeout"] = True
    if settings.retry_on_error:
        kwargs["retry_on_error"] = list(settings.retry_on_error)
    if settings.unix_socket_path:
        kwargs.update(path=settings.unix_socket_path, connection_class=UnixDomainSocketConnection)
        return kwargs
    kwargs["socket_connect_timeout"] = settings.conn_timeout
    if not settings.sentinel:
        kwargs.update(host=settings.host, port=settings.port, connection_class=Connection)
    if settings.ssl:
        kwargs.update(
            ssl_keyfile=settings.ssl_keyfile,
            ssl_certfile=settings.ssl_certfile,
            ssl_cert_reqs=settings.ssl_cert_reqs,
            ssl_ca_certs=settings.ssl_ca_certs,
            ssl_ca_data=settings.ssl_ca_data,
            # without a certificate check there is no name to check (and Python refuses the combination)
            ssl_check_hostname=settings.ssl_check_hostname and settings.ssl_cert_reqs != "none",
        )
        if settings.sentinel:
            kwargs["ssl"] = True
        else:
            kwargs["connection_class"] = SSLConnection
    return kwargs


def _open(settings: RedisSettings, options: dict[str, Any]) -> RunnerRedis:
    """A ``RunnerRedis`` on a waiting pool built from ``settings``; nothing is connected yet."""
    kwargs = _connection_kwargs(settings)
    max_connections = settings.max_connections or DEFAULT_MAX_CONNECTIONS
    if settings.cluster:
        from runner.engine.cluster import open_cluster

        return open_cluster(kwargs, options, max_connections)
    if settings.sentinel:
        hosts = settings.host if isinstance(settings.host, list) else [(settings.host, settings.port)]
        sentinel_kwargs = {k: v for k, v in kwargs.items() if k not in ("connection_class", "ssl")}
        sentinel = Sentinel(hosts, **sentinel_kwargs)  # type: ignore[no-untyped-call]
        pool = cast(
            RunnerRedis,
            sentinel.master_for(
                settings.sentinel_master,
                redis_class=RunnerRedis,
                connection_pool_class=_WaitingSentinelPool,
                max_connections=max_connections,
                timeout=settings.pool_timeout,
                **kwargs,
            ),
        )
        pool.configure(**options)
        pool._sentinel_clients = list(sentinel.sentinels)  # closed with the pool: they hold connections too
    else:
        connections = WaitingConnectionPool(max_connections=max_connections, timeout=settings.pool_timeout, **kwargs)
        pool = RunnerRedis(connection_pool=connections, **options)
        pool.auto_close_connection_pool = True  # the pool is ours alone: aclose() closes it
    cast(WaitingConnectionPool, pool.connection_pool).description = settings.describe()
    if isinstance(kwargs["retry"], _Retry):  # a Retry of the caller's (RedisSettings.retry) reports nothing
        kwargs["retry"].trouble.where = settings.describe()
    return pool


async def create_pool(
    settings_: RedisSettings | None = None,
    *,
    retry: int = 0,
    job_serializer: Serializer | None = None,
    job_deserializer: Deserializer | None = None,
    default_queue_name: str = default_queue_name,
    expires_extra_ms: int = expires_extra_ms_default,
    key_layout: KeyLayout | None = None,
    pickle_allow: Sequence[str] = (),
) -> RunnerRedis:
    """Open a connection pool to Redis and check it answers, retrying ``conn_retries`` times.

    ``key_layout`` says where every key lives (default: arq's layout, which arq processes share; with
    ``settings.cluster`` the cluster layout, ``keys.CLUSTER_LAYOUT``, where a queue's keys share one hash slot).

    ``pickle_allow`` names modules (or ``"module:attribute"``s) whose classes the pool may unpickle when it reads
    jobs and results (``Job.result()``, ``queued_jobs()``); beyond plain data nothing else is imported or called
    (see ``runner.engine.safe_pickle``). A worker decodes its jobs in full, so sign the payloads
    (``serializers.sign_serializer``) when others can write to the Redis.

    Returns:
        A ``RunnerRedis`` (a ``redis.asyncio.Redis``) that also enqueues jobs. Close it with ``await pool.aclose()``.

    Raises:
        InvalidArgument: ``settings.cluster`` with a layout whose keys of a queue do not share a slot, or with
            sentinel or a unix socket; ``settings.shards`` with a count below 1, or above 1 on arq's layout.
        RedisUnavailable: Redis did not answer after every retry; the message names the address.
        AuthenticationFailed: Redis refused the username or password (not retried: waiting does not fix it).
    """
    settings = settings_ or RedisSettings()
    key_layout = key_layout or (CLUSTER_LAYOUT if settings.cluster else ARQ_LAYOUT)
    _check_cluster(settings, key_layout)
    try:
        check_shards(key_layout, settings.shards)
    except ValueError as exc:
        raise InvalidArgument(f"RedisSettings.shards: {exc}.") from None
    lease = None
    if settings.embedded_dir is not None:
        from runner import embedded  # the embedded server is optional machinery outside the engine

        lease = await asyncio.to_thread(embedded.acquire, settings.embedded_dir)
        settings = replace(settings, unix_socket_path=lease.unix_socket_path, embedded_dir=None)

    options: dict[str, Any] = {
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "default_queue_name": default_queue_name,
        "expires_extra_ms": expires_extra_ms,
        "key_layout": key_layout,
        "pickle_allow": pickle_allow,
        "queue_shards": settings.shards,
    }
    while True:
        pool = _open(settings, options)
        try:
            await pool.ping()
        except AuthenticationError as exc:
            # a wrong password does not get right by waiting: say so at once, once
            await pool.aclose()
            if lease is not None:
                lease.release()
            raise AuthenticationFailed(
                f"Redis at {_describe(settings, lease)} refused the credentials ({exc}); check the password and "
                "the username (RUNNER_REDIS__PASSWORD, RUNNER_REDIS__USERNAME or the URL)."
            ) from None
        except (RedisError, OSError, ssl_module.SSLError) as exc:
            await pool.aclose()
            if retry < settings.conn_retries:
                logger.warning(
                    "redis at %s not reachable (%s), retry %d of %d in %gs",
                    _describe(settings, lease),
                    type(exc).__name__,
                    retry + 1,
                    settings.conn_retries,
                    settings.conn_retry_delay,
                )
                await asyncio.sleep(settings.conn_retry_delay)
                retry += 1
                continue
            if lease is not None:
                lease.release()
            raise RedisUnavailable(
                f"Could not connect to Redis at {_describe(settings, lease)} after {retry + 1} attempts "
                f"({_connect_failure(exc)}); check the URL and that the server is running."
            ) from exc
        pool._embedded_lease = lease
        pool.settings_description = _describe(settings, lease)
        return pool


def _check_cluster(settings: RedisSettings, key_layout: KeyLayout) -> None:
    if not settings.cluster:
        return
    if not key_layout.cluster_safe:
        raise InvalidArgument(
            f"The {key_layout.name} key layout cannot run on a Redis Cluster (a script's keys would lie in different "
            "slots); use the cluster layout (the default with cluster=True), or a single server."
        )
    if settings.sentinel or settings.unix_socket_path or settings.embedded_dir is not None:
        raise InvalidArgument(
            "cluster=True needs a TCP address of a cluster node (redis://host:port), not sentinel, a unix socket or "
            "an embedded server."
        )
    if settings.database:
        raise InvalidArgument(f"A Redis Cluster has only database 0 (got database {settings.database}).")


def _connect_failure(exc: BaseException) -> str:
    """``exc`` as the could-not-connect message names it, in the same words on either event loop.

    asyncio's loop words a failed connect "Connect call failed ('127.0.0.1', 6379)" where uvloop, like the OS, says
    "Connection refused"; redis-py copies that text into its own message, so the OS's words replace the loop's.
    """
    text = str(exc)
    cause = exc if isinstance(exc, OSError) else exc.__cause__ or exc.__context__
    # an SSL error's errno is OpenSSL's, and a resolver error's (negative) is getaddrinfo's: neither is os.strerror's
    if isinstance(cause, OSError) and not isinstance(cause, ssl_module.SSLError) and cause.strerror:
        errno = cause.errno or 0
        if errno > 0:
            text = text.replace(cause.strerror, os.strerror(errno))
    return f"{type(exc).__name__}: {text}"


def _describe(settings: RedisSettings, lease: Any) -> str:
    if lease is not None:
        return f"embedded server at {settings.unix_socket_path}"
    return settings.describe()


_SYNC_KWARGS = (
    "db",
    "username",
    "password",
    "credential_provider",
    "socket_timeout",
    "socket_connect_timeout",
    "client_name",
    "host",
    "port",
)
_SSL_KWARGS = ("ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data", "ssl_check_hostname")


def blocking_client(pool: RunnerRedis, settings: RedisSettings | None = None) -> Any:
    """A blocking ``redis.Redis`` to the server ``pool`` talks to, for a thread the event loop must not starve.

    It has its own connections: a call from the thread never waits for the loop, and the loop never waits for it.
    Behind Sentinel, ``settings`` says where the sentinels are.
    """
    import redis
    from redis.backoff import ExponentialBackoff as SyncBackoff
    from redis.retry import Retry as SyncRetry

    if getattr(pool, "is_cluster", False):
        from runner.engine.cluster import blocking_cluster_client

        return blocking_cluster_client(pool)
    retry = SyncRetry(SyncBackoff(cap=0.5, base=0.05), 2)
    if settings is not None and settings.sentinel:
        from redis.sentinel import Sentinel as SyncSentinel

        kwargs = _connection_kwargs(settings)
        kwargs.pop("max_connections", None)
        kwargs["retry"] = retry
        hosts = settings.host if isinstance(settings.host, list) else [(settings.host, settings.port)]
        return SyncSentinel(hosts, **kwargs).master_for(settings.sentinel_master, **kwargs)  # type: ignore[no-untyped-call]
    source = pool.connection_pool.connection_kwargs
    kwargs = {key: source[key] for key in _SYNC_KWARGS if key in source}
    kind = pool.connection_pool.connection_class.__name__
    if kind == "UnixDomainSocketConnection":
        kwargs["unix_socket_path"] = source["path"]
    elif kind == "SSLConnection":
        kwargs["ssl"] = True
        kwargs.update({key: source[key] for key in _SSL_KWARGS if key in source})
    return redis.Redis(retry=retry, decode_responses=False, **kwargs)


async def log_redis_info(redis: Redis, log_func: Callable[[str], Any]) -> None:
    """Report the server's version, memory use, client count and key count through ``log_func`` (arq's line)."""
    if getattr(redis, "is_cluster", False):
        from runner.engine.cluster import log_cluster_info

        log_func(await log_cluster_info(redis))
        return
    async with redis.pipeline(transaction=False) as pipe:
        pipe.info(section="Server")
        pipe.info(section="Memory")
        pipe.info(section="Clients")
        pipe.dbsize()
        server, memory, clients, key_count = await pipe.execute()
    log_func(
        f"redis_version={server.get('redis_version', '?')} mem_usage={memory.get('used_memory_human', '?')} "
        f"clients_connected={clients.get('connected_clients', '?')} db_keys={key_count}"
    )
