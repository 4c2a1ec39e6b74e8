"""The common web pattern: a FastAPI app that hands slow work to the example worker.

    pip install -e ".[fastapi]"
    runner start examples/worker.toml                 # terminal 1: the worker
    uvicorn fastapi_app:app --app-dir examples        # terminal 2: the app
    curl -X POST localhost:8000/welcome -H 'content-type: application/json' -d '{"email": "ada@example.com"}'
    curl localhost:8000/jobs/welcome:ada@example.com

In development it shares the worker's embedded server (no Redis to install); set REDIS_URL in production.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from runner import Job, JobStatus, RedisSettings, RunnerRedis, create_pool

# the directory worker.toml's url = "embedded://.runner" names
REDIS_URL = os.environ.get("REDIS_URL", f"embedded://{Path(__file__).resolve().parent / '.runner'}")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # one pool for the whole app, opened before the first request and closed after the last
    app.state.redis = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    try:
        yield
    finally:
        await app.state.redis.aclose()


app = FastAPI(title="runner example", lifespan=lifespan)


def redis_of(request: Request) -> RunnerRedis:
    pool: RunnerRedis = request.app.state.redis
    return pool


class Welcome(BaseModel):
    email: str
    name: str | None = None


@app.post("/welcome", status_code=202)
async def welcome(body: Welcome, request: Request) -> dict[str, Any]:
    """Send a welcome email in the background; asking twice for one address sends it once."""
    job_id = f"welcome:{body.email}"
    # the job id is the dedupe key: while that job is queued, running or its result is kept, enqueue_job
    # returns None instead of queueing a second copy
    job = await redis_of(request).enqueue_job(
        "send_email", body.email, f"Welcome, {body.name or body.email.split('@')[0]}!", _job_id=job_id
    )
    return {"job_id": job_id, "enqueued": job is not None}


@app.get("/jobs/{job_id}")
async def job_status(job_id: str, request: Request) -> dict[str, Any]:
    """Where a job is: queued, deferred, in_progress or complete, and its result once complete."""
    job = Job(job_id, redis_of(request))
    status = await job.status()
    if status == JobStatus.not_found:
        raise HTTPException(status_code=404, detail=f"no job {job_id!r} (never enqueued, or its result expired)")
    body: dict[str, Any] = {"job_id": job_id, "status": status.value}
    if status == JobStatus.complete:
        info = await job.result_info()
        if info is not None:
            body["success"] = info.success
            # a failed job's result is the exception it raised; show it as text
            body["result"] = info.result if info.success else f"{type(info.result).__name__}: {info.result}"
    return body
