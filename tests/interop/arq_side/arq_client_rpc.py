"""Runs inside the arq venv: a tiny JSON-lines RPC server that drives the real arq client for the tests.

One request per stdin line, ``{"id": N, "op": ..., ...}``; one reply per stdout line, ``{"id": N, ...}``.
Requests run concurrently, so a test can wait on ``abort`` while it drives a runner worker.
This file must not import runner: it proves what a plain arq installation sees.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job


def encode(value: Any) -> Any:
    """Turn what arq hands back into JSON the test can compare exactly."""
    if isinstance(value, BaseException):
        cls = type(value)
        return {"__exc__": f"{cls.__module__}.{cls.__qualname__}", "args": [encode(a) for a in value.args]}
    if isinstance(value, datetime):
        return {"__ms__": round(value.timestamp() * 1000)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"__repr__": repr(value)}


class Handler:
    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: Any = None

    async def start(self) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(self.url))

    def job(self, request: dict[str, Any]) -> Job:
        return Job(request["job_id"], self.pool, _queue_name=request.get("queue_name") or "arq:queue")

    async def op_enqueue(self, r: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if r.get("job_id") is not None:
            options["_job_id"] = r["job_id"]
        if r.get("defer_by") is not None:
            options["_defer_by"] = r["defer_by"]
        if r.get("defer_until_ms") is not None:
            options["_defer_until"] = datetime.fromtimestamp(r["defer_until_ms"] / 1000, tz=UTC)
        if r.get("job_try") is not None:
            options["_job_try"] = r["job_try"]
        if r.get("queue_name") is not None:
            options["_queue_name"] = r["queue_name"]
        job = await self.pool.enqueue_job(r["function"], *r.get("args", []), **options, **r.get("kwargs", {}))
        return {"job_id": None if job is None else job.job_id}

    async def op_status(self, r: dict[str, Any]) -> dict[str, Any]:
        return {"status": (await self.job(r).status()).value}

    async def op_info(self, r: dict[str, Any]) -> dict[str, Any]:
        info = await self.job(r).info()
        if info is None:
            return {"info": None}
        fields = {name: encode(getattr(info, name)) for name in info.__dataclass_fields__}
        return {"info": fields, "kind": type(info).__name__}

    async def op_queued_jobs(self, r: dict[str, Any]) -> dict[str, Any]:
        jobs = await self.pool.queued_jobs(queue_name=r.get("queue_name"))
        return {"jobs": [{name: encode(getattr(j, name)) for name in j.__dataclass_fields__} for j in jobs]}

    async def op_all_job_results(self, r: dict[str, Any]) -> dict[str, Any]:
        results = await self.pool.all_job_results()
        return {"results": [{name: encode(getattr(j, name)) for name in j.__dataclass_fields__} for j in results]}

    async def op_result(self, r: dict[str, Any]) -> dict[str, Any]:
        value = await self.job(r).result(timeout=r.get("timeout"), poll_delay=r.get("poll_delay", 0.05))
        return {"value": encode(value)}

    async def op_abort(self, r: dict[str, Any]) -> dict[str, Any]:
        aborted = await self.job(r).abort(timeout=r.get("timeout"), poll_delay=r.get("poll_delay", 0.05))
        return {"aborted": aborted}

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = await getattr(self, "op_" + request["op"])(request)
        except (Exception, asyncio.CancelledError) as exc:
            reply = {"error": encode(exc)}
        reply["id"] = request["id"]
        return reply


async def main() -> None:
    handler = Handler(sys.argv[1])
    await handler.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"id": 0, "ready": True}), flush=True)
    pending: set[asyncio.Task[None]] = set()

    async def serve(request: dict[str, Any]) -> None:
        reply = await handler.handle(request)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        task = asyncio.create_task(serve(json.loads(line)))
        pending.add(task)
        task.add_done_callback(pending.discard)
    # stdin closed: the test session is over
    for task in list(pending):
        task.cancel()
    await handler.pool.aclose()


if __name__ == "__main__":
    asyncio.run(main())
