"""Job functions as the worker knows them: a name, a coroutine and per-function settings."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from runner.engine.utils import SecondsTimedelta, import_string, to_seconds


def is_async_callable(obj: Any) -> bool:
    """``obj`` is an ``async def`` function, or an instance whose ``__call__`` is one (not a class)."""
    return inspect.iscoroutinefunction(obj) or (
        not inspect.isclass(obj) and inspect.iscoroutinefunction(getattr(obj, "__call__", None))  # noqa: B004
    )


class JobCoroutine(Protocol):
    """A job: ``async def job(ctx, *args, **kwargs)``."""

    __qualname__: str

    def __call__(self, ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Awaitable[Any]: ...


Hook = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass
class Function:
    """A function a worker can run, with settings that override the worker's (None = use the worker's)."""

    name: str
    coroutine: Callable[..., Awaitable[Any]]
    timeout_s: float | None
    keep_result_s: float | None
    keep_result_forever: bool | None
    max_tries: int | None


def func(
    coroutine: Callable[..., Awaitable[Any]] | str | Function,
    *,
    name: str | None = None,
    keep_result: SecondsTimedelta | None = None,
    timeout: SecondsTimedelta | None = None,
    keep_result_forever: bool | None = None,
    max_tries: int | None = None,
) -> Function:
    """Wrap a coroutine function (or a ``"module:attr"`` path to one) with per-function settings.

    Raises:
        ImportStringError: a path does not resolve.
        TypeError: the object is not an ``async def`` function.
    """
    target: Any = coroutine
    if isinstance(target, Function):
        target = target.coroutine
    if isinstance(target, str):
        name = name or target.rpartition(":")[2]
        target = import_string(target)
    if not is_async_callable(target):
        raise TypeError(f"{target!r} is not a coroutine function; jobs must be defined with `async def`.")
    return Function(
        name=name or target.__qualname__,
        coroutine=target,
        timeout_s=to_seconds(timeout),
        keep_result_s=to_seconds(keep_result),
        keep_result_forever=keep_result_forever,
        max_tries=max_tries,
    )
