"""Item 14: the payload functions keep arq's signatures (``serialize_result(..., ref, ...)``, ``deserialize_*(r)``),
and a custom serializer pair works end to end."""

from __future__ import annotations

import inspect
import json
import pickle
import threading
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import (
    DeserializationError,
    SerializationError,
    deserialize_job,
    deserialize_job_raw,
    deserialize_result,
    serialize_job,
    serialize_result,
)
from arq.worker import Worker


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def loads(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


async def echo(ctx: dict[str, Any], value: Any) -> Any:
    return value


async def scenario(env: Any) -> None:
    for function in (serialize_job, serialize_result, deserialize_job, deserialize_job_raw, deserialize_result):
        env.observe(f"signature {function.__name__}", list(inspect.signature(function).parameters))
    job = serialize_job("f", (1,), {"k": 2}, None, 1_700_000_000_000)
    env.observe("job payload", pickle.loads(job))
    env.observe("deserialize_job", deserialize_job(r=job))
    env.observe("deserialize_job_raw", deserialize_job_raw(job))
    result = serialize_result(
        "f",
        (1,),
        {},
        1,
        1_700_000_000_000,
        True,
        42,
        1_700_000_000_100,
        1_700_000_000_200,
        "ref:f",
        "arq:queue",
        "the-id",
    )
    env.observe("result record", pickle.loads(result))
    env.observe("deserialize_result", deserialize_result(result))
    env.observe(
        "unserializable result",
        pickle.loads(serialize_result("f", (), {}, 1, 0, True, threading.Lock(), 0, 0, "ref:f", "arq:queue", "the-id")),
    )
    try:
        serialize_job("f", (threading.Lock(),), {}, None, 0)
    except SerializationError as exc:
        env.observe("unserializable job", [exc, type(exc.__cause__).__name__])
    for name, function in (("job", deserialize_job), ("result", deserialize_result)):
        try:
            function(b"not a pickle")
        except DeserializationError as exc:
            env.observe(f"undecodable {name}", [exc, isinstance(exc, SerializationError)])

    redis = await create_pool(RedisSettings.from_dsn(env.url), job_serializer=dumps, job_deserializer=loads)
    queued = await redis.enqueue_job("echo", {"a": [1, 2]})
    env.observe("stored as json", json.loads(await redis.get("arq:job:" + queued.job_id))["a"])
    worker = Worker(
        [echo],
        redis_pool=redis,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        job_serializer=dumps,
        job_deserializer=loads,
    )
    await worker.main()
    await worker.close()
    env.observe("json result", await queued.result(timeout=5))
    env.observe("json result record", sorted(json.loads(await redis.get("arq:result:" + queued.job_id))))
    await redis.aclose()
