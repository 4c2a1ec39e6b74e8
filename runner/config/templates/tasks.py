"""Job functions for worker.toml. A job is `async def job(ctx, *args, **kwargs)`; ctx holds job_id, job_try,
enqueue_time, score and redis (the pool, for enqueueing follow-up jobs)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("tasks")


async def startup(ctx: dict[str, Any]) -> None:
    # open clients that every job shares (HTTP sessions, database pools) and keep them in ctx
    ctx["sent"] = 0


async def shutdown(ctx: dict[str, Any]) -> None:
    log.info("sent %d emails", ctx.get("sent", 0))


async def send_email(ctx: dict[str, Any], to: str, subject: str = "Hello") -> dict[str, Any]:
    ctx["sent"] = ctx.get("sent", 0) + 1
    return {"to": to, "subject": subject, "try": ctx["job_try"]}


async def cleanup(ctx: dict[str, Any]) -> int:
    return 0
