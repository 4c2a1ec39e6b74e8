"""Item 13: ``func(func(f, name=..., timeout=...))`` returns the inner Function unchanged; ``Function``'s fields."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from arq.worker import Function, Worker, func

DIFFERENCES = {
    "not a function: arq's words only": {"arq": True, "runner": False, "doc": "human-messages"},
    # runner runs a plain def job in its thread pool; arq refuses it
    "a plain def job": {"arq": "RuntimeError", "runner": "thread", "doc": "def-jobs"},
    "two functions under one name": {
        "arq": "the last one wins",
        "runner": {
            "exception": "InvalidArgument",
            "args": [
                "two functions or cron jobs are named 'x'; names must be unique (one coroutine may have several "
                "cron jobs)"
            ],
            "str": "two functions or cron jobs are named 'x'; names must be unique (one coroutine may have several "
            "cron jobs)",
        },
        "doc": "duplicate-names",
    },
}


async def send(ctx: dict[str, Any]) -> None:
    return None


async def other(ctx: dict[str, Any]) -> None:
    return None


async def scenario(env: Any) -> None:
    inner = func(send, name="mail", timeout=timedelta(seconds=3), keep_result=10, max_tries=2)
    env.observe("inner", [inner.name, inner.timeout_s, inner.keep_result_s, inner.keep_result_forever, inner.max_tries])
    env.observe("func of func is it", func(inner) is inner)
    env.observe("outer options ignored", func(inner, name="other", timeout=9).name)
    # runner's Function adds where it runs (executor, path) after arq's six fields
    env.observe("fields", [f.name for f in dataclasses.fields(Function)][:6])
    plain = func(send)
    env.observe("plain", [plain.name, plain.timeout_s, plain.keep_result_s, plain.keep_result_forever, plain.max_tries])
    env.observe("built directly", Function("x", send, 1, 2, True, 3) == Function("x", send, 1, 2, True, 3))
    try:
        env.observe("a plain def job", getattr(func(lambda ctx: None), "executor", "?"))  # type: ignore[arg-type]
    except RuntimeError:
        env.observe("a plain def job", "RuntimeError")
    try:
        func(42)  # type: ignore[arg-type]
    except RuntimeError as exc:
        env.observe("not a function is a RuntimeError", True)
        env.observe("not a function: arq's words only", str(exc).endswith("is not a coroutine function"))
    try:
        worker = Worker([func(send, name="x"), func(other, name="x")], handle_signals=False)
    except ValueError as exc:
        env.observe("two functions under one name", exc)
    else:
        env.observe(
            "two functions under one name", "the last one wins" if worker.functions["x"].coroutine is other else "?"
        )
    try:
        Worker([], handle_signals=False)
    except RuntimeError as exc:  # runner's InvalidArgument is a RuntimeError, as arq's is
        env.observe("a worker with nothing to run", exc)
    same = Worker([func(send, name="x", timeout=1), func(send, name="x", timeout=2)], handle_signals=False)
    env.observe("one coroutine twice: the last settings", same.functions["x"].timeout_s)
