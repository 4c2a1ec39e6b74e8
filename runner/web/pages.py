"""The HTML pages: server-rendered, each refreshed in place by a few lines of JavaScript (static/dashboard.js).

Actions are forms that POST with the CSRF token and then redirect (303) back to a page that says what happened,
from a fixed list of messages: nothing a request carries is ever echoed into a page as markup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from runner.web import params
from runner.web.errors import WebError
from runner.web.handling import Endpoint, Web
from runner.web.security import CSRF_FIELD, check_change

MAX_FORM_BYTES = 16_384
JOB_ACTIONS = ("retry", "abort", "delete")
FAILED_ACTIONS = ("retry-all", "purge")


async def form(request: Request) -> dict[str, str]:
    """A urlencoded form (the only kind these pages send), without a multipart parser."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise WebError(413, "Too large", "That form is larger than any this dashboard sends.")
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


async def overview(web: Web, request: Request) -> Response:
    return web.render(request, "overview.html", await web.board.overview())


async def queue(web: Web, request: Request) -> Response:
    position, limit = params.page(request)
    data = await web.board.queue_view(
        request.path_params["queue"],
        state=params.state(request),
        function=params.text(request, "function"),
        position=position,
        limit=limit,
    )
    return web.render(request, "queue.html", data)


async def failed(web: Web, request: Request) -> Response:
    position, limit = params.page(request)
    data = await web.board.queue_view(
        request.path_params["queue"],
        state="failed",
        function=params.text(request, "function"),
        position=position,
        limit=limit,
    )
    return web.render(request, "failed.html", data)


async def confirm(web: Web, request: Request) -> Response:
    action = params.choice(request, "action", FAILED_ACTIONS)
    if action is None:
        raise WebError(400, "Bad request", f"action must be one of {', '.join(FAILED_ACTIONS)}.")
    web.board.require_writable()
    (summary,) = await web.board.summaries([request.path_params["queue"]])
    return web.render(request, "confirm.html", {"action": action, "queue": summary.queue, "failed": summary.failed})


async def failed_action(web: Web, request: Request) -> Response:
    fields = await form(request)
    check_change(request, request.state.access, fields.get(CSRF_FIELD))
    name = request.path_params["queue"]
    action = request.path_params["action"]
    if action not in FAILED_ACTIONS:
        raise WebError(404, "Not found", "There is no such action.")
    if fields.get("confirm") != "yes":
        return _redirect(request, f"/queues/{quote(name, safe='')}/failed/confirm", action=action)
    if action == "retry-all":
        report = await web.board.retry_all(name)
        return _redirect(request, f"/queues/{quote(name, safe='')}/failed", done="retried_all", n=report["retried"])
    report = await web.board.purge(name)
    return _redirect(request, f"/queues/{quote(name, safe='')}/failed", done="purged", n=report["deleted"])


async def job(web: Web, request: Request) -> Response:
    return web.render(request, "job.html", await web.board.job(request.path_params["job_id"]))


async def value(web: Web, request: Request) -> Response:
    text = await web.board.value(request.path_params["job_id"], request.path_params["part"])
    # plain text, never sniffed as HTML: the value is shown exactly as it is
    return PlainTextResponse(text, headers={"content-disposition": "inline"})


async def job_action(web: Web, request: Request) -> Response:
    fields = await form(request)
    check_change(request, request.state.access, fields.get(CSRF_FIELD))
    job_id, action = request.path_params["job_id"], request.path_params["action"]
    if action not in JOB_ACTIONS:
        raise WebError(404, "Not found", "There is no such action.")
    detail_queue = (await web.board.job(job_id)).get("queue")
    done: str = await getattr(web.board, action)(job_id)
    if action == "delete":
        return _redirect(request, f"/queues/{quote(detail_queue or '', safe='')}", done="deleted")
    return _redirect(request, f"/jobs/{quote(job_id, safe='')}", done=done)


async def search(web: Web, request: Request) -> Response:
    text = params.text(request, "q") or ""
    data = await web.board.search(text)
    if len(data["jobs"]) == 1 and data["jobs"][0]["id"] == text:
        return _redirect(request, f"/jobs/{quote(text, safe='')}")
    return web.render(request, "search.html", data)


async def workers(web: Web, request: Request) -> Response:
    return web.render(request, "workers.html", await web.board.workers())


async def cron(web: Web, request: Request) -> Response:
    return web.render(request, "cron.html", await web.board.cron())


def routes(web: Web) -> list[BaseRoute]:
    """The pages' routes, each handled through ``Web.handle``."""
    return [
        Route("/", _bind(web, overview), name="overview"),
        Route("/search", _bind(web, search), name="search"),
        Route("/workers", _bind(web, workers), name="workers"),
        Route("/cron", _bind(web, cron), name="cron"),
        Route("/queues/{queue:path}/failed/confirm", _bind(web, confirm), name="confirm"),
        Route(
            "/queues/{queue:path}/failed/{action}", _bind(web, failed_action), methods=["POST"], name="failed_action"
        ),
        Route("/queues/{queue:path}/failed", _bind(web, failed), name="failed"),
        Route("/queues/{queue:path}", _bind(web, queue), name="queue"),
        Route("/jobs/{job_id:path}/value/{part}", _bind(web, value), name="value"),
        Route("/jobs/{job_id:path}/{action}", _bind(web, job_action), methods=["POST"], name="job_action"),
        Route("/jobs/{job_id:path}", _bind(web, job), name="job"),
    ]


def _bind(web: Web, handler: Callable[[Web, Request], Awaitable[Response]]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await web.handle(request, "page", lambda r: handler(web, r))

    return endpoint


def _redirect(request: Request, path: str, **query: Any) -> Response:
    root = request.scope.get("root_path") or ""
    shown = {k: v for k, v in query.items() if v is not None}
    return RedirectResponse(root + path + ("?" + urlencode(shown) if shown else ""), status_code=303)
