"""The JSON API under ``/api/v1``: the same data the pages show, and the same actions.

Reads are GET; changes are POST and need the bearer token, or (for a browser session) the ``X-CSRF-Token``
header matching the dashboard's cookie. Retrying or purging every failed job of a queue needs ``confirm=true``.
Errors are ``{"error": {"status", "title", "message"}}`` with the matching HTTP status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runner import __version__
from runner.web import params
from runner.web.errors import WebError
from runner.web.handling import API_VERSION, Endpoint, Web
from runner.web.security import check_change

PREFIX = f"/api/{API_VERSION}"

ENDPOINTS = [
    ("GET", "/overview", "every queue's counts, per-minute outcomes over the last hour, workers alive"),
    ("GET", "/queues/{queue}/jobs", "a page of a queue's jobs: ?state=&function=&position=&limit="),
    ("GET", "/queues/{queue}/failed", "a page of a queue's failed jobs, newest first: ?function=&position=&limit="),
    ("POST", "/queues/{queue}/failed/retry?confirm=true", "retry every failed job of the queue"),
    ("POST", "/queues/{queue}/failed/purge?confirm=true", "delete every failed job's result"),
    ("GET", "/jobs/{id}", "one job, with its whole arguments, result and traceback"),
    ("POST", "/jobs/{id}/retry", "retry a failed job"),
    ("POST", "/jobs/{id}/abort", "ask the workers to abort a waiting or running job"),
    ("POST", "/jobs/{id}/delete", "delete a waiting job, or a finished job's result"),
    ("GET", "/search?q=", "jobs whose id is or contains q"),
    ("GET", "/workers", "each live worker's presence record"),
    ("GET", "/cron", "each cron job's next runs in its zone and its last run"),
]


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status)


async def index(web: Web, request: Request) -> Response:
    return _json(
        {
            "version": API_VERSION,
            "runner": __version__,
            "read_only": web.options.read_only,
            "queues": web.options.queue_names,
            "endpoints": [{"method": m, "path": PREFIX + p, "about": a} for m, p, a in ENDPOINTS],
        }
    )


async def overview(web: Web, request: Request) -> Response:
    return _json(await web.board.overview())


async def jobs(web: Web, request: Request) -> Response:
    position, limit = params.page(request)
    return _json(
        await web.board.queue_view(
            request.path_params["queue"],
            state=params.state(request),
            function=params.text(request, "function"),
            position=position,
            limit=limit,
        )
    )


async def failed(web: Web, request: Request) -> Response:
    position, limit = params.page(request)
    return _json(
        await web.board.queue_view(
            request.path_params["queue"],
            state="failed",
            function=params.text(request, "function"),
            position=position,
            limit=limit,
        )
    )


async def failed_action(web: Web, request: Request) -> Response:
    check_change(request, request.state.access, None)
    action = request.path_params["action"]
    if action not in ("retry", "purge"):
        raise WebError(404, "Not found", "There is no such action; use retry or purge.")
    if request.query_params.get("confirm") != "true":
        raise WebError(400, "Not confirmed", f"Add confirm=true: this {action}s every failed job of the queue.")
    name = request.path_params["queue"]
    if action == "retry":
        return _json(await web.board.retry_all(name, params.text(request, "function")))
    return _json(await web.board.purge(name))


async def job(web: Web, request: Request) -> Response:
    return _json(await web.board.job(request.path_params["job_id"], whole=True))


async def job_action(web: Web, request: Request) -> Response:
    check_change(request, request.state.access, None)
    job_id, action = request.path_params["job_id"], request.path_params["action"]
    if action not in ("retry", "abort", "delete"):
        raise WebError(404, "Not found", "There is no such action; use retry, abort or delete.")
    done = await getattr(web.board, action)(job_id)
    return _json({"id": job_id, "done": done})


async def search(web: Web, request: Request) -> Response:
    return _json(await web.board.search(params.text(request, "q") or ""))


async def workers(web: Web, request: Request) -> Response:
    return _json(await web.board.workers())


async def cron(web: Web, request: Request) -> Response:
    return _json(await web.board.cron())


def routes(web: Web) -> list[BaseRoute]:
    """The API' routes, each handled through ``Web.handle``."""
    return [
        Route(PREFIX, _bind(web, index)),
        Route(PREFIX + "/overview", _bind(web, overview)),
        Route(PREFIX + "/search", _bind(web, search)),
        Route(PREFIX + "/workers", _bind(web, workers)),
        Route(PREFIX + "/cron", _bind(web, cron)),
        Route(PREFIX + "/queues/{queue:path}/failed/{action}", _bind(web, failed_action), methods=["POST"]),
        Route(PREFIX + "/queues/{queue:path}/failed", _bind(web, failed)),
        Route(PREFIX + "/queues/{queue:path}/jobs", _bind(web, jobs)),
        Route(PREFIX + "/jobs/{job_id:path}/{action}", _bind(web, job_action), methods=["POST"]),
        Route(PREFIX + "/jobs/{job_id:path}", _bind(web, job)),
    ]


def _bind(web: Web, handler: Callable[[Web, Request], Awaitable[Response]]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await web.handle(request, "api", lambda r: handler(web, r))

    return endpoint
