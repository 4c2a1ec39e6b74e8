"""Query-string values, checked: a bad one is a 400 that says which parameter and what it accepts."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from runner.engine.browse import STATES
from runner.web.errors import WebError

MAX_POSITION = 10**9
MAX_LIMIT = 500


def whole(request: Request, name: str, default: int, *, low: int = 0, high: int = MAX_POSITION) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise WebError(400, "Bad request", f'{name} must be a whole number from {low} to {high} (got "{shown}").')
    return value


def choice(request: Request, name: str, choices: Sequence[str]) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "" or raw == "all":
        return None
    if raw not in choices:
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise WebError(400, "Bad request", f'{name} must be one of {", ".join(choices)} (got "{shown}").')
    return raw


def text(request: Request, name: str, *, limit: int = 200) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    if len(raw) > limit:
        raise WebError(400, "Bad request", f"{name} is longer than {limit} characters.")
    return raw.strip()


def state(request: Request) -> str | None:
    return choice(request, "state", STATES)


def page(request: Request) -> tuple[int, int]:
    """``position`` and ``limit``."""
    return whole(request, "position", 0), whole(request, "limit", 50, low=1, high=MAX_LIMIT)
