"""The one error the dashboard's handlers raise: a status, a short title and a sentence for the person reading."""

from __future__ import annotations


class WebError(Exception):
    """A request that cannot be served as asked; shown as an error page, or as JSON by the API.

    Args:
        status: the HTTP status (400 bad input, 401/403 not allowed, 404 not found, 409 state changed, 503 Redis).
        title: a few words for the page heading.
        message: one or two sentences that say what happened and, where it can, what to do.
    """

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
