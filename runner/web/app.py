"""The ASGI application: the routes of the pages, the API and the assets, and ``dashboard_app``.

Every endpoint goes through ``Web.handle`` (handling.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import tzinfo
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from runner.engine.connection import RedisSettings
from runner.engine.cron import CronJob
from runner.engine.serializers import Deserializer, Serializer
from runner.engine.utils import SecondsTimedelta, to_seconds
from runner.web import api, pages
from runner.web.errors import WebError
from runner.web.handling import Endpoint, Kind, Web
from runner.web.options import Credentials, DashboardOptions, QueueInfo, cron_infos, from_config
from runner.web.security import SecurityHeaders


def create_app(options: DashboardOptions) -> Starlette:
    """The dashboard for ``options``: pages at ``/``, the JSON API at ``/api/v1``, assets at ``/static``."""
    if not options.queues:
        raise ValueError("a dashboard needs at least one queue")
    web = Web(options)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await web.board.close()

    routes: list[BaseRoute] = [
        *api.routes(web),
        *pages.routes(web),
        Mount("/static", StaticFiles(packages=[("runner.web", "static")]), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        kind: Kind = "api" if request.url.path.startswith("/api/") else "page"
        message = "There is no such page here." if status == 404 else "That method is not allowed here."
        return await web.handle(
            request, kind, _raiser(WebError(status, "Not found" if status == 404 else "Not allowed", message))
        )

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_found})
    app.state.web = web
    # a mounted app gets no shutdown event: the mounting app's own lifespan can call this
    app.state.aclose = web.board.close
    app.add_middleware(SecurityHeaders)
    if options.allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(options.allowed_hosts))
    return app


def _raiser(exc: WebError) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        raise exc

    return endpoint


def dashboard_app(
    config: str | Path | None = None,
    *,
    redis_settings: RedisSettings | None = None,
    queues: Sequence[str | QueueInfo] | None = None,
    job_serializer: Serializer | None = None,
    job_deserializer: Deserializer | None = None,
    cron_jobs: Sequence[CronJob] = (),
    timezone: tzinfo | None = None,
    read_only: bool | None = None,
    refresh: SecondsTimedelta | None = None,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    title: str | None = None,
) -> Starlette:
    """The dashboard as an ASGI app, to serve or to mount: ``app.mount("/jobs", dashboard_app("worker.toml"))``.

    Args:
        config: a worker.toml; everything below defaults to what it (and its environment) says.
        redis_settings: where Redis is (default: the file's, else ``RedisSettings()``).
        queues: the queues to show, by name or as ``QueueInfo`` (default: the file's, else ``arq:queue``).
        job_serializer, job_deserializer: the queues' serializer pair (default: the file's, else pickle).
        cron_jobs: ``cron(...)`` jobs to list on the cron page when there is no file (their queue: the first).
        timezone: the zone of those cron jobs when they name none.
        read_only: hide and refuse every action.
        refresh: seconds between updates of an open page.
        token, username, password: credentials; without any the app is open to whoever reaches it, so a mounted
            dashboard relies on the mounting app's own authentication.
        title: shown in the page header (default: the file's name).

    Raises:
        ProblemList: ``config`` cannot be loaded (one problem per bad value).
    """
    options = (
        from_config(config)[0] if config is not None else DashboardOptions(RedisSettings(), [QueueInfo("arq:queue")])
    )
    if redis_settings is not None:
        options.redis_settings = redis_settings
    if queues is not None:
        options.queues = [q if isinstance(q, QueueInfo) else QueueInfo(q) for q in queues]
    if job_serializer is not None:
        options.job_serializer = job_serializer
    if job_deserializer is not None:
        options.job_deserializer = job_deserializer
    if cron_jobs:
        options.cron = cron_infos(cron_jobs, options.queues[0].name, timezone)
    if read_only is not None:
        options.read_only = read_only
    if refresh is not None:
        options.refresh_s = to_seconds(refresh) or options.refresh_s
    if token is not None or password is not None or username is not None:
        current = options.credentials
        options.credentials = Credentials(
            token=token if token is not None else current.token,
            username=username or current.username,
            password=password if password is not None else current.password,
        )
    if title is not None:
        options.title = title
    return create_app(options)
