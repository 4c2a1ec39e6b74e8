"""Who may use the dashboard, and what keeps a page from being used against its reader.

- Authentication: ``Authorization: Bearer <token>``, or HTTP basic auth with the configured user and password (or
  any user name and the token as password, so a browser's own prompt works with a token). With no credentials
  configured the dashboard is open, which ``runner dashboard`` allows on a loopback address only.
- CSRF: every change is a POST carrying a token that matches a cookie the dashboard set (double submit, the cookie
  SameSite=Strict); a request from another origin is refused. A bearer token is never sent by a browser on its
  own, so requests that carry one need no CSRF token (scripts use it).
- Headers: a strict Content-Security-Policy (no inline script, nothing from elsewhere), no framing, no sniffing,
  and no caching of pages that show job data.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from enum import Enum
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runner.web.errors import WebError
from runner.web.options import Credentials

CSRF_COOKIE = "runner_dashboard_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
REALM = 'Basic realm="runner dashboard", charset="UTF-8"'

HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class Access(Enum):
    """How a request got in."""

    open = "open"  # no credentials configured
    bearer = "bearer"  # an Authorization: Bearer header: never ambient, no CSRF token needed
    basic = "basic"  # basic auth: the browser resends it by itself, so changes need a CSRF token


class NotAuthenticated(WebError):
    def __init__(self) -> None:
        super().__init__(
            401,
            "Sign in",
            "This dashboard needs credentials: the bearer token, or basic auth with the user name and password "
            "(or the token as password).",
        )


def authenticate(request: Request, credentials: Credentials) -> Access:
    """How ``request`` is allowed in.

    Raises:
        NotAuthenticated: credentials are configured and the request carries none that match.
    """
    if not credentials.required:
        return Access.open
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.token is not None and _same(value.strip(), credentials.token):
        return Access.bearer
    if scheme.lower() == "basic":
        user, password = _basic(value)
        if password is not None:
            if credentials.password is not None and _same(user, credentials.username) & _same(
                password, credentials.password
            ):
                return Access.basic
            if credentials.token is not None and _same(password, credentials.token):
                return Access.basic
    raise NotAuthenticated()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic(value: str) -> tuple[str, str | None]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", None
    user, sep, password = decoded.partition(":")
    return user, (password if sep else None)


def csrf_token(request: Request) -> tuple[str, bool]:
    """This browser's CSRF token, and whether it is new (then the response must set the cookie)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if len(current) >= 32 and current.isascii():
        return current, False
    return secrets.token_urlsafe(32), True


def check_change(request: Request, access: Access, submitted: str | None) -> None:
    """Refuse a change that another site could have made the browser send.

    Raises:
        WebError: 403, the origin is another site or the CSRF token is missing or wrong.
    """
    origin = request.headers.get("origin")
    if origin and origin != "null":
        if urlsplit(origin).netloc != request.headers.get("host", ""):
            raise WebError(403, "Refused", "The request came from another site; changes are made from this one only.")
    if access is Access.bearer:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    given = submitted or request.headers.get(CSRF_HEADER, "")
    if not cookie or not given or not _same(given, cookie):
        raise WebError(
            403,
            "Refused",
            "This change carried no valid CSRF token (the page may be old, or cookies are off): reload the page and "
            "try again. Scripts send the bearer token, or the X-CSRF-Token header with the cookie.",
        )


def cookie_path(request: Request) -> str:
    return (request.scope.get("root_path") or "") + "/"


class SecurityHeaders:
    """Adds the headers above to every response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, add_headers)
