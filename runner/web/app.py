"""The ASGI application: routes, the handling every request shares, and ``dashboard_app``.

Every endpoint goes through ``Web.handle``: authenticate, give the browser a CSRF token, run the endpoint, and
turn anything that went wrong into a clear page or JSON error (a ``WebError``'s own message; Redis down is 503;
anything unexpected is logged and shown as a short 500 without a traceback).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import tzinfo
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from runner.engine.connection import RedisSettings
from runner.engine.cron import CronJob
from runner.engine.serializers import Deserializer, Serializer
from runner.engine.utils import SecondsTimedelta, to_seconds
from runner.web import views
from runner.web.board import REDIS_ERRORS, Board
from runner.web.errors import WebError
from runner.web.options import Credentials, DashboardOptions, QueueInfo, cron_infos, from_config
from runner.web.security import (
    CSRF_COOKIE,
    REALM,
    SecurityHeaders,
    authenticate,
    cookie_path,
    csrf_token,
)

logger = logging.getLogger("runner.web")

Kind = Literal["page", "api"]
Endpoint = Callable[[Request], Awaitable[Response]]
API_VERSION = "v1"


class Web:
    """The state every endpoint shares: the options, the data board and the templates."""

    def __init__(self, options: DashboardOptions) -> None:
        self.options = options
        self.board = Board(options)
        self.templates = Environment(
            loader=PackageLoader("runner.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(age=views.age, when=_when, plural=_plural)

    async def handle(self, request: Request, kind: Kind, endpoint: Endpoint) -> Response:
        token, new_token = csrf_token(request)
        request.state.csrf = token
        try:
            request.state.access = authenticate(request, self.options.credentials)
            response = await endpoint(request)
        except WebError as exc:
            response = self.error(request, kind, exc)
        except REDIS_ERRORS as exc:
            response = self.error(request, kind, self.board.unavailable(exc))
        except Exception:
            logger.exception("dashboard: unexpected error serving %s %s", request.method, request.url.path)
            response = self.error(request, kind, _unexpected())
        if new_token:
            response.set_cookie(
                CSRF_COOKIE,
                token,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path=cookie_path(request),
            )
        return response

    def error(self, request: Request, kind: Kind, exc: WebError) -> Response:
        headers = {"www-authenticate": REALM} if exc.status == 401 else None
        if kind == "api":
            body = {"error": {"status": exc.status, "title": exc.title, "message": exc.message}}
            return JSONResponse(body, status_code=exc.status, headers=headers)
        try:
            return self.render(request, "error.html", {"error": exc}, status=exc.status, headers=headers)
        except Exception:  # the error page itself failed: say it plainly rather than not at all
            logger.exception("dashboard: the error page could not be rendered")
            return PlainTextResponse(f"{exc.title}: {exc.message}", status_code=exc.status, headers=headers)

    def render(
        self,
        request: Request,
        template: str,
        data: dict[str, Any],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        root = request.scope.get("root_path") or ""

        def url(path: str, **query: Any) -> str:
            shown = {k: v for k, v in query.items() if v is not None and v != ""}
            return root + path + ("?" + urlencode(shown) if shown else "")

        context = {
            "data": data,
            "options": self.options,
            "read_only": self.options.read_only,
            "csrf": request.state.csrf if hasattr(request.state, "csrf") else "",
            "partial": request.headers.get("x-runner-partial") == "1",
            "url": url,
            "q": quote,
            "static": lambda name: f"{root}/static/{name}",
            "path": request.url.path,
            "query": dict(request.query_params),
        }
        html = self.templates.get_template(template).render(context)
        return HTMLResponse(html, status_code=status, headers=headers)


def _unexpected() -> WebError:
    return WebError(
        500,
        "Something went wrong",
        "The dashboard hit an unexpected error serving this request; the details are in its log. Nothing was changed.",
    )


def _when(iso_text: str | None) -> str:
    """``2024-06-01T08:00:00.123Z`` as ``2024-06-01 08:00:00``."""
    return "-" if not iso_text else iso_text[:19].replace("T", " ")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def create_app(options: DashboardOptions) -> Starlette:
    """The dashboard for ``options``: pages at ``/``, the JSON API at ``/api/v1``, assets at ``/static``."""
    from runner.web import api, pages

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
