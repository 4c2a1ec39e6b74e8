"""Runs differential scenarios in one interpreter and prints what they observed, as one JSON document.

It runs twice per test session: in the arq venv on the scenarios as written (arq's API), and in runner's venv on
the same files after the documented import rewrite. It imports neither arq nor runner itself (only redis-py,
which both venvs have); the scenarios do.

    python driver.py SCENARIO_DIR REDIS_URL NAME [NAME ...]  >  observations.json

Each scenario is a module with ``async def scenario(env)`` (or a plain ``def`` for one that must own the event
loop, as ``Worker.run()`` and ``check_health()`` do). It reports what it sees with ``env.observe(key, value)``;
the test compares the two runs key by key. Before a scenario the database is emptied and a fresh log capture is
put on the ``arq`` logger, as a user's logging set-up would be; after it, its log records are reported too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import importlib
import inspect
import json
import logging
import math
import re
import sys
import time
import traceback
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

SCENARIO_TIMEOUT_S = 20
TTL_TOLERANCE_S = 5
_HEX_ID = re.compile(r"\b[0-9a-f]{32}\b")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")
# a job event line, arq's and runner's alike: "  0.12s → id:function(args)"
_JOB_EVENT = re.compile(r"^\s*-?[\d.]+s ([→←!↻⊘])")


def twin(logger_name: str) -> str:
    """runner's engine loggers answer to arq's names: ``runner.worker`` is compared with ``arq.worker``."""
    return "arq" + logger_name[len("runner") :] if logger_name.startswith("runner.") else logger_name


def encode(value: Any) -> Any:
    """What a scenario saw, as JSON two runs can be compared on."""
    if isinstance(value, BaseException):
        return {
            "exception": type(value).__name__,
            # the classes it is an instance of, for `except` clauses: runner's may add its own to arq's
            "is": [c.__name__ for c in type(value).__mro__ if c not in (object, BaseException, Exception)],
            "args": [encode(a) for a in value.args],
            "str": str(value),
        }
    if isinstance(value, enum.Enum):
        return encode(value.value)
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, timedelta):
        return {"timedelta": value.total_seconds()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((encode(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return {"bytes": value.decode("utf-8", "replace")}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"repr": _ADDRESS.sub("", repr(value))}


class Capture(logging.Handler):
    """The records that reach a handler on the ``arq`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Env:
    """What a scenario is handed: the server, and where its observations go."""

    def __init__(self, url: str, capture: Capture) -> None:
        self.url = url
        self.capture = capture
        self.observations: dict[str, Any] = {}
        self.started = time.monotonic()

    def observe(self, key: str, value: Any) -> None:
        """Record one observation; the same key twice is a bug in the scenario."""
        if key in self.observations:
            raise AssertionError(f"observation {key!r} recorded twice")
        self.observations[key] = encode(value)

    def observe_time(self, key: str, seconds: float, tolerance: float) -> None:
        """Record a duration; the two runs agree when they are within ``tolerance`` seconds."""
        self.observe(key, {"seconds": round(seconds, 3), "tolerance": tolerance})

    def records(self, logger_prefix: str = "") -> list[logging.LogRecord]:
        return [r for r in self.capture.records if twin(r.name).startswith(logger_prefix)]

    def job_log(self) -> list[list[Any]]:
        """The job-related records that reached the ``arq`` logger's handler, as comparable rows.

        Warnings and errors: ``[logger, level, has traceback, extra]`` (their wording is each project's own);
        job event lines at INFO: ``[logger, level, mark]`` with the mark (→ ← ↻ ⊘) that says which event it was.
        Other INFO lines (start-up banners, health) are left out.
        """
        rows: list[list[Any]] = []
        for record in self.capture.records:
            if record.levelno >= logging.WARNING:
                rows.append(
                    [
                        twin(record.name),
                        record.levelname,
                        record.exc_info is not None,
                        encode(getattr(record, "extra", None)),
                    ]
                )
            elif match := _JOB_EVENT.match(record.getMessage()):
                rows.append([twin(record.name), record.levelname, match.group(1)])
        return rows

    async def keys(self, pattern: str = "*") -> list[list[Any]]:
        """The database's keys (runner-only ``runner:*`` keys left out), as ``[name, type, ttl]``.

        Generated ids read ``<id>``; the TTL is in whole seconds, rounded up, as a timing the two runs agree on
        within ``TTL_TOLERANCE_S`` (a loaded machine may read a key a few seconds later on one side), or -1: none.
        """
        client = aioredis.Redis.from_url(self.url)
        try:
            found = []
            for key in sorted(await client.keys(pattern)):
                name = key.decode()
                if name.startswith("runner:"):
                    continue
                kind = (await client.type(key)).decode()
                ttl = await client.pttl(key)
                # whole seconds, rounded up: a read a fraction of a second after the write still shows the TTL set
                seconds = {"seconds": math.ceil(ttl / 1000), "tolerance": TTL_TOLERANCE_S}
                found.append([_HEX_ID.sub("<id>", name), kind, -1 if ttl < 0 else seconds])
            return found
        finally:
            await client.aclose()


def flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()


def run_one(name: str, url: str) -> dict[str, Any]:
    flush(url)
    capture = Capture()
    arq_logger = logging.getLogger("arq")
    arq_logger.addHandler(capture)
    arq_logger.setLevel(logging.INFO)
    env = Env(url, capture)
    try:
        module = importlib.import_module(name)
        scenario = module.scenario
        if inspect.iscoroutinefunction(scenario):
            asyncio.run(asyncio.wait_for(scenario(env), SCENARIO_TIMEOUT_S))
        else:
            scenario(env)
    except BaseException as exc:
        env.observations["crash"] = {
            "exception": type(exc).__name__,
            "str": str(exc),
            "where": traceback.format_exc().strip().splitlines()[-3:],
        }
    finally:
        arq_logger.removeHandler(capture)
        arq_logger.setLevel(logging.NOTSET)
    return {
        "observations": env.observations,
        "differences": getattr(sys.modules.get(name), "DIFFERENCES", {}),
        "seconds": round(time.monotonic() - env.started, 2),
    }


def main() -> None:
    scenario_dir, url, *names = sys.argv[1:]
    sys.path.insert(0, str(Path(scenario_dir).resolve()))
    out = {name: run_one(name, url) for name in names}
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
