"""The handling every request shares: authenticate, give the browser a CSRF token, run the endpoint, and turn
anything that went wrong into a clear page or JSON error (a ``WebError``'s own message; Redis down is 503;
anything unexpected is logged and shown as a short 500 without a traceback)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from runner.web import views
from runner.web.board import REDIS_ERRORS, Board
from runner.web.errors import WebError
from runner.web.options import DashboardOptions
from runner.web.security import CSRF_COOKIE, REALM, authenticate, cookie_path, csrf_token

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
