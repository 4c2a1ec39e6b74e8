"""Connecting: the pool waits when it is full, refused credentials fail at once, URLs never show a password, TLS
checks the host name."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from runner import JobSpec, RedisSettings, create_pool
from runner.engine import loops
from runner.engine.utils import mask_url
from runner.errors import AuthenticationFailed, ConfigError, PoolExhausted, RedisUnavailable
from tests.support.servers import RedisServer, ValkeyServer, free_port

# -- a full pool ----------------------------------------------------------------------------------------------------


async def test_thousands_of_concurrent_calls_on_one_pool_wait_their_turn(redis_url: str) -> None:
    # 100 connections (redis-py's cap) used to make 4 000 of 5 000 such calls fail with MaxConnectionsError.
    # pool_timeout bounds one caller's wait for a connection; the last of 5 000 waits for the 4 900 before it, which
    # on a loaded 2-core machine can pass the 10 s default, so this test gives it room: it proves waiting, not speed.
    pool = await create_pool(RedisSettings.from_dsn(redis_url, pool_timeout=120))
    try:
        jobs = await asyncio.gather(*(pool.enqueue_job("f") for _ in range(5000)))
        assert all(job is not None for job in jobs)
        assert await pool.zcard("arq:queue") == 5000
        in_pool = pool.connection_pool
        assert len(in_pool._in_use_connections) + len(in_pool._available_connections) <= 100
    finally:
        await pool.aclose()


async def test_a_pool_busy_past_pool_timeout_says_what_to_change(redis_url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url, max_connections=2, pool_timeout=0.3))
    try:
        # two calls that hold their connections for a while: the pool is full
        holders = [asyncio.create_task(pool.blpop([f"nothing:{i}"], timeout=2)) for i in range(2)]
        await asyncio.sleep(0.1)
        with pytest.raises(PoolExhausted) as info:
            await pool.enqueue_job("f")
        assert str(info.value) == (
            f"All 2 connections to {RedisSettings.from_dsn(redis_url).describe()} were busy for 0.3s; "
            "raise max_connections (or pool_timeout), or make fewer calls at once on this pool."
        )
        assert isinstance(info.value, ConnectionError)  # what a caller catching connection trouble already catches
        await asyncio.gather(*holders)
        assert await pool.enqueue_job("f") is not None  # a free connection again: calls go through
    finally:
        await pool.aclose()


async def test_pool_settings_reach_the_pool(redis_url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url, max_connections=7))
    try:
        assert pool.connection_pool.max_connections == 7
        assert pool.connection_pool.timeout == 10  # type: ignore[attr-defined]
        await pool.enqueue_many([JobSpec("f") for _ in range(3)])
    finally:
        await pool.aclose()
    assert RedisSettings().pool_timeout == 10 and RedisSettings().max_connections is None


# -- credentials ------------------------------------------------------------------------------------------------------


@pytest.fixture
def password_server() -> Iterator[ValkeyServer]:
    server = ValkeyServer(args=("--requirepass", "pa55word")).start()
    try:
        yield server
    finally:
        server.stop()


async def connections_received(server: ValkeyServer) -> int:
    client = aioredis.Redis(port=server.port, password="pa55word")
    try:
        return int((await client.info("stats"))["total_connections_received"])
    finally:
        await client.aclose()


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_a_refused_connection_reads_the_same_on_either_loop(event_loop: str) -> None:
    # asyncio's loop words it "Connect call failed ('127.0.0.1', PORT)", uvloop "Connection refused"
    port = free_port()  # nothing listens there
    with pytest.raises(RedisUnavailable) as info:
        loops.run(create_pool(RedisSettings(host="127.0.0.1", port=port, conn_retries=0)), event_loop=event_loop)
    assert str(info.value) == (
        f"Could not connect to Redis at redis://127.0.0.1:{port}/0 after 1 attempts (ConnectionError: Error 111 "
        f"connecting to 127.0.0.1:{port}. Connection refused.); check the URL and that the server is running."
    )


async def test_a_wrong_password_fails_at_once_with_one_line(
    password_server: ValkeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    before = await connections_received(password_server)
    settings = RedisSettings(host="127.0.0.1", port=password_server.port, password="wrong-one", conn_retry_delay=1)
    with caplog.at_level(logging.WARNING), pytest.raises(AuthenticationFailed) as info:
        await create_pool(settings)
    message = str(info.value)
    assert message.startswith(f"Redis at redis://:***@127.0.0.1:{password_server.port}/0 refused the credentials (")
    assert message.endswith(
        "check the password and the username (RUNNER_REDIS__PASSWORD, RUNNER_REDIS__USERNAME or the URL)."
    )
    assert "wrong-one" not in message and "\n" not in message
    assert isinstance(info.value, RedisUnavailable)  # callers that handle "cannot reach Redis" handle this too
    assert caplog.records == []  # no "retry 1 of 5" lines: waiting does not fix a password
    # one connection, one handshake: neither create_pool nor redis-py sent the password again
    assert await connections_received(password_server) - before == 2  # ours, and the counting client's own


async def test_no_password_for_a_server_that_wants_one(password_server: ValkeyServer) -> None:
    with pytest.raises(AuthenticationFailed, match="refused the credentials"):
        await create_pool(RedisSettings(host="127.0.0.1", port=password_server.port, conn_retry_delay=1))


# -- URLs -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown", "chars"),
    [
        ("redis://:hunter#two@redis.example:6379/0", "redis://:***@redis.example:6379/0", '"#" that is'),
        ("redis://app:hun/ter2@redis.example:6379/0", "redis://app:***@redis.example:6379/0", '"/" that is'),
        ("redis://:hun?ter2@redis.example/3", "redis://:***@redis.example/3", '"?" that is'),
        ("rediss://:abc#def/ghi?jkl@redis.example:6380/0", "rediss://:***@redis.example:6380/0", '"#", "/", "?" that'),
        # digits only before the "#": the parser would have taken it for a port and connected to localhost
        ("redis://:123#xyz@redis.example:6379/0", "redis://:***@redis.example:6379/0", '"#" that is'),
    ],
)
def test_an_unencoded_password_is_masked_and_the_fix_named(url: str, shown: str, chars: str) -> None:
    with pytest.raises(ConfigError) as info:
        RedisSettings.from_dsn(url)
    message = str(info.value)
    assert message.startswith(f'Redis URL "{shown}" has a password with {chars}')
    assert "URL-encoded" in message and 'urllib.parse.quote(password, safe="")' in message
    secret = url.split("://", 1)[1].rpartition("@")[0].partition(":")[2]
    pieces = {secret, *secret.replace("#", " ").replace("/", " ").replace("?", " ").split()}
    assert all(len(piece) >= 3 for piece in pieces)
    for piece in pieces:
        assert piece not in message
    assert mask_url(url) == shown


def test_encoded_passwords_still_parse() -> None:
    s = RedisSettings.from_dsn("redis://:hunter%232%2F%3F@redis.example:6379/0")
    assert (s.password, s.host, s.port) == ("hunter#2/?", "redis.example", 6379)
    assert mask_url("redis://redis.example:6379/0") == "redis://redis.example:6379/0"
    assert mask_url("redis://user@redis.example/0") == "redis://user@redis.example/0"


# -- TLS ------------------------------------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Debian's redis-server on TLS only, with a certificate for "localhost" from a CA of the test's own."""
    if not RedisServer.available():
        pytest.skip("needs Debian's redis-server (apt-get install redis-server)")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA", "-keyout",
            "ca.key", "-out", "ca.pem", cwd=tmp_path)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out",
            "server.csr", cwd=tmp_path)  # fmt: skip
    (tmp_path / "san.cnf").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days",
            "2", "-extfile", "san.cnf", "-out", "server.pem", cwd=tmp_path)  # fmt: skip
    port = free_port()
    args = [RedisServer.path, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--dir", str(tmp_path), "--tls-cert-file", "server.pem", "--tls-key-file", "server.key"]
    args += ["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no", "--appendonly", "no"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port, tmp_path / "ca.pem"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)


async def test_tls_checks_the_host_name_by_default(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    assert RedisSettings().ssl_check_hostname is True

    def settings(host: str, **kwargs: object) -> RedisSettings:
        return RedisSettings.from_dsn(f"rediss://{host}:{port}/0", ssl_ca_certs=str(ca), conn_retries=0, **kwargs)

    # the certificate is for "localhost", not for 127.0.0.1: refused, though the CA signed it
    with pytest.raises(RedisUnavailable, match="certificate verify failed: IP address mismatch"):
        await create_pool(settings("127.0.0.1"))
    for good in (settings("localhost"), settings("127.0.0.1", ssl_check_hostname=False)):
        pool = await create_pool(good)
        try:
            assert await pool.enqueue_job("f") is not None
        finally:
            await pool.aclose()
    # no certificate check at all: no name check either (Python refuses to check a name it does not verify)
    pool = await create_pool(settings("127.0.0.1", ssl_cert_reqs="none"))
    await pool.aclose()


def test_commands_are_packed_in_c_to_the_bytes_redis_py_packs() -> None:
    from redis.asyncio.connection import Connection as RedisPyConnection
    from redis.exceptions import DataError

    from runner.engine.packing import Connection as PackingConnection

    ours, theirs = PackingConnection(), RedisPyConnection()
    for command in [
        ("EVALSHA", "f" * 40, 2, "arq:queue", b"\x00\xff", 1.5, -1, 10**15, "é", memoryview(b"mv")),
        ("CONFIG GET", "maxmemory"),  # two words: split, as redis-py does
        ("SET", "k", bytearray(b"ba")),  # hiredis refuses a bytearray: redis-py packs it
        ("SET", "k", b"x" * 100_000),  # a large value redis-py sends in pieces
    ]:
        assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))
    with pytest.raises(DataError):
        ours.pack_command("SET", "k", True)  # refused as redis-py refuses it


async def test_a_pool_packs_with_hiredis(redis_url: str) -> None:
    from runner.engine.packing import Connection as PackingConnection

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        assert issubclass(pool.connection_pool.connection_class, PackingConnection)
        await pool.set("packed", b"\x00value")
        assert await pool.get("packed") == b"\x00value"
    finally:
        await pool.aclose()


async def test_a_write_the_socket_cannot_take_times_out_and_drops_the_connection() -> None:
    # the connection sends without a timer while the socket takes the bytes at once (packing.py); a write left
    # over in a full socket buffer still waits at most socket_timeout, and the connection is closed after it
    server = ValkeyServer().start()
    pool = await create_pool(RedisSettings.from_dsn(server.url, socket_timeout=0.5, conn_retries=0))
    try:
        await pool.set("small", "fits")
        connection = await pool.connection_pool.get_connection()
        assert connection.is_connected
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGSTOP)  # reads nothing more: the socket buffers fill up
        try:
            started = time.monotonic()
            with pytest.raises(aioredis.TimeoutError, match="Timeout writing to socket"):
                await connection.send_command("SET", "big", b"x" * 64_000_000)
            assert time.monotonic() - started < 10
            assert not connection.is_connected
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
            await pool.connection_pool.release(connection)
        assert await pool.get("small") == b"fits"
    finally:
        await pool.aclose()
        server.stop()
