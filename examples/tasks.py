"""The example worker's jobs (see worker.toml beside this file).

A job is ``async def job(ctx, *args, **kwargs)``; ``ctx`` holds ``job_id``, ``job_try``, ``enqueue_time``,
``score`` and ``redis`` (the pool, for enqueueing follow-up jobs), plus whatever the startup hook puts there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from runner import Retry

log = logging.getLogger("tasks")

# where "sent" mail goes: inside the embedded server's directory, which git ignores
OUTBOX = Path(os.environ.get("EXAMPLE_OUTBOX", Path(__file__).resolve().parent / ".runner" / "outbox"))

# what the pretend rate service answers once it is no longer busy
RATES = {"EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}


async def startup(ctx: dict[str, Any]) -> None:
    """Runs once per worker: set up what every job shares (here a directory; usually HTTP or DB clients)."""
    await asyncio.to_thread(OUTBOX.mkdir, parents=True, exist_ok=True)
    ctx["outbox"] = OUTBOX


async def shutdown(ctx: dict[str, Any]) -> None:
    count = await asyncio.to_thread(lambda: sum(1 for _ in OUTBOX.glob("*.eml")))
    log.info("outbox holds %d messages", count)


async def send_email(ctx: dict[str, Any], to: str, subject: str, body: str = "") -> dict[str, Any]:
    """An I/O job: build a message and drop it into the outbox, the way a local mail pickup directory works."""
    message = EmailMessage()
    message["From"] = "runner-example@localhost"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body or f"Hello {to.split('@')[0]},\n\nthis message was sent by a runner job.\n")
    path: Path = ctx["outbox"] / f"{ctx['job_id']}.eml"
    # file writes block; keep them off the event loop so other jobs keep running
    size = await asyncio.to_thread(path.write_bytes, bytes(message))
    return {"to": to, "file": path.name, "bytes": size}


async def fetch_exchange_rate(ctx: dict[str, Any], currency: str) -> dict[str, Any]:
    """A job that retries: the pretend rate service is busy the first two times it is asked.

    ``Retry(defer=…)`` puts the job back on the queue to run again later; each try backs off a little more.
    worker.toml caps it at 5 tries.
    """
    if ctx["job_try"] < 3:
        log.info("rate service busy, asking again in %.1fs", 0.5 * ctx["job_try"])
        raise Retry(defer=0.5 * ctx["job_try"])
    return {"currency": currency, "usd": RATES[currency], "tries": ctx["job_try"]}


async def build_report(ctx: dict[str, Any], rows: int) -> dict[str, Any]:
    """A job with its own time limit: worker.toml gives it 2s, so a big report fails with a TimeoutError."""
    started = time.monotonic()
    for _ in range(0, rows, 1000):
        await asyncio.sleep(0.05)  # stands in for a query per page of 1000 rows
    return {"rows": rows, "seconds": round(time.monotonic() - started, 2)}


async def purge_outbox(ctx: dict[str, Any], max_age_s: float = 3600) -> int:
    """The cron job: every 5 minutes, delete outbox messages older than an hour. Returns how many it deleted."""
    return await asyncio.to_thread(_delete_older_than, time.time() - max_age_s)


def _delete_older_than(cutoff: float) -> int:
    old = [path for path in OUTBOX.glob("*.eml") if path.stat().st_mtime < cutoff]
    for path in old:
        path.unlink(missing_ok=True)
    return len(old)
