"""``runner dashboard``: serve the web dashboard and its JSON API for the queues a worker.toml names."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from runner._dist import DASHBOARD_HINT
from runner.cli.exits import EXIT_FAILURE, EXIT_START, fail, handled
from runner.cli.loading import config_argument
from runner.cli.logs import setup_logging
from runner.cli.ops import verbose_option
from runner.errors import RunnerError

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def _import_web() -> Any:
    try:
        import uvicorn

        from runner import web
    except ImportError as exc:
        fail(str(exc) if DASHBOARD_HINT in str(exc) else _missing(exc), EXIT_START)
    return web, uvicorn


def _missing(exc: ImportError) -> str:
    needed = exc.name or "a package that is missing"
    return f"the dashboard needs {needed}; install it with: {DASHBOARD_HINT}"


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, made here so a taken port is one clear line rather than a server's log."""
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        if sock is not None:
            sock.close()
        fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another with --host/--port", EXIT_START)
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def _redis_answers(options: Any) -> str | None:
    """None when Redis answers; else why not (the dashboard still starts and says so on every page)."""
    from runner.engine.connection import create_pool

    try:
        pool = await create_pool(replace(options.redis_settings, conn_retries=0))
    except RunnerError as exc:
        return str(exc)
    await pool.aclose()
    return None


@click.command("dashboard")
@config_argument
@click.option("--host", metavar="ADDRESS", help="Address to listen on [default: dashboard.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on [default: dashboard.port, 8000].")
@click.option("--read-only", is_flag=True, default=None, help="Show everything, change nothing.")
@verbose_option
def dashboard(config_file: Path, host: str | None, port: int | None, read_only: bool | None, verbose: bool) -> None:
    """Serve the web dashboard and its JSON API for the queues of WORKER_TOML.

    It listens on 127.0.0.1 unless told otherwise; any other address needs credentials from the environment:
    RUNNER_DASHBOARD__TOKEN (a bearer token, also accepted as the basic-auth password) or
    RUNNER_DASHBOARD__PASSWORD (basic auth, user RUNNER_DASHBOARD__USERNAME, default "runner").
    """
    web, uvicorn = _import_web()
    setup_logging(verbose, "text")
    with handled(EXIT_FAILURE, verbose):
        options, board = web.options.from_config(config_file)
    host = host or board.host
    port = port or board.port
    if read_only:
        options.read_only = True
    loopback = web.options.is_loopback(host)
    if not loopback and not options.credentials.required:
        fail(
            f"refusing to serve the dashboard on {host} without credentials: set RUNNER_DASHBOARD__TOKEN or "
            "RUNNER_DASHBOARD__PASSWORD in the environment, or listen on 127.0.0.1",
            EXIT_START,
        )
    if loopback and not options.credentials.required:
        # an open dashboard answers only to its own name, so a web page cannot reach it by DNS rebinding
        options.allowed_hosts = LOOPBACK_HOSTS
    sock = _bind(host, port)
    app = web.create_app(options)
    shown = f"[{host}]" if ":" in host else host
    access = "read-only" if options.read_only else "read-write"
    guard = "credentials required" if options.credentials.required else "no credentials (loopback only)"
    click.echo(f"runner dashboard for {config_file} at http://{shown}:{sock.getsockname()[1]}/ ({access}, {guard})")
    click.echo(f"  Redis: {options.redis_settings.describe()}; queues: {', '.join(options.queue_names)}")
    problem = asyncio.run(_redis_answers(options))
    if problem:
        click.echo(f"Warning: {problem} The pages say so until it answers.", err=True)
    config = uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
