"""Job functions as the worker knows them: a name, a callable, where it runs and per-function settings."""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from runner.engine.executors import EXECUTORS, ExecutorKind
from runner.engine.flow import FlowLimits, RateLimit
from runner.engine.utils import SecondsTimedelta, import_string, to_seconds
from runner.errors import ImportStringError, NotACoroutine


class JobCoroutine(Protocol):
    """A job: ``async def job(ctx, *args, **kwargs)``, or a plain ``def`` run in a thread or a subprocess."""

    __qualname__: str

    def __call__(self, ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any: ...


Hook = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass
class Function:
    """A function a worker can run, with settings that override the worker's (None = use the worker's).

    ``executor`` says where it runs (runner/engine/executors); ``path`` is the ``"module:qualname"`` a job
    subprocess imports it by, for ``executor = "process"``; ``flow`` its flow-control settings (runner/engine/flow.py).
    """

    name: str
    coroutine: Callable[..., Any]
    timeout_s: float | None
    keep_result_s: float | None
    keep_result_forever: bool | None
    max_tries: int | None
    executor: ExecutorKind = "async"
    path: str | None = None
    flow: FlowLimits = FlowLimits()


def is_async_callable(obj: Any) -> bool:
    """``async def`` functions, and instances (not classes) whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(obj):
        return True
    return not inspect.isclass(obj) and inspect.iscoroutinefunction(getattr(obj, "__call__", None))  # noqa: B004


def import_path_of(fn: Any) -> str | None:
    """The ``"module:qualname"`` a fresh interpreter can import ``fn`` by, or None when there is none.

    A function defined in a script run by path keeps ``__main__`` (a job subprocess loads the script as
    multiprocessing's spawn does); one in a module run with ``-m`` is named by that module.
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        return None
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:
            module = spec.name.removesuffix(".__main__")
    return f"{module}:{qualname}"


def process_path_problem(path: str | None, target: Any) -> str | None:
    """Why a job subprocess could not import ``target`` by ``path``, or None when it can."""
    if path is None:
        return "is not defined at the top level of a module, so a job process cannot import it; move it there"
    try:
        found = import_string(path)
    except ImportStringError as exc:
        return f'cannot be imported by "{path}" in a job process: {exc}'
    if isinstance(found, Function):
        found = found.coroutine
    if getattr(found, "__qualname__", None) != getattr(target, "__qualname__", None):
        return f'is not what "{path}" names, so a job process would run something else; give its own path'
    return None


def func(
    coroutine: Callable[..., Any] | str | Function,
    *,
    name: str | None = None,
    keep_result: SecondsTimedelta | None = None,
    timeout: SecondsTimedelta | None = None,
    keep_result_forever: bool | None = None,
    max_tries: int | None = None,
    executor: ExecutorKind | None = None,
    priority: int | None = None,
    concurrency: int | None = None,
    rate_limit: str | RateLimit | None = None,
    group_concurrency: int | None = None,
    group_rate_limit: str | RateLimit | None = None,
) -> Function:
    """Wrap a job function (or an import path to one) with per-function settings.

    ``executor`` is where it runs: ``"async"`` on the event loop (the default for ``async def``), ``"thread"`` in
    the worker's thread pool (the default for a plain ``def``), ``"process"`` in a job subprocess (either kind).
    A path is arq's ``"pkg.mod.fn"`` (the function is then named by the whole path, as arq names it) or
    ``"pkg.mod:fn"`` (named ``fn``). A ``Function`` is returned unchanged, options and all, as arq does, unless
    ``executor`` asks for another place to run it.

    Flow control (docs/flow-control.md), enforced in Redis across every worker of the queue: ``priority`` is the
    default ``_priority`` of its jobs (higher first, -1000..1000), ``concurrency`` the most running at once,
    ``rate_limit`` the most started per period (``"100/s"``, ``"600/m"``, ``"5/h"``), ``group_concurrency`` and
    ``group_rate_limit`` the same per ``_group``.

    Raises:
        ImportStringError: a path does not resolve.
        NotACoroutine: the object is not a function (a TypeError and, as in arq, a RuntimeError); TypeError: not
            one the executor can run.
        ValueError: an unknown executor.
        InvalidArgument: a flow-control value out of range or malformed.
    """
    flow = FlowLimits.build(
        priority=priority,
        concurrency=concurrency,
        rate_limit=rate_limit,
        group_concurrency=group_concurrency,
        group_rate_limit=group_rate_limit,
        label=name or str(getattr(coroutine, "__qualname__", coroutine)),
    )
    target: Any = coroutine
    path = None
    if isinstance(target, Function):
        if (executor is None or executor == target.executor) and not flow.active:
            return target
        if executor is None or executor == target.executor:
            return dataclasses.replace(target, flow=flow)
        path = target.path
        target = target.coroutine
    if isinstance(target, str):
        name = name or default_name(target)
        path = target
        target = import_string(target)
        if isinstance(target, Function):
            target = target.coroutine
    if not callable(target) or inspect.isclass(target):
        raise NotACoroutine(f"{target!r} is not a function; a job is `async def job(ctx, ...)` or `def job(ctx, ...)`.")
    is_async = is_async_callable(target)
    if executor is None:
        executor = "async" if is_async else "thread"
    label = name or getattr(target, "__qualname__", repr(target))
    if executor not in EXECUTORS:
        raise ValueError(f'{label}: unknown executor "{executor}"; choose one of: {", ".join(EXECUTORS)}.')
    if executor == "async" and not is_async:
        raise TypeError(
            f'{label} is a plain function; executor "async" runs `async def` functions only '
            '(leave executor unset, or use "thread" or "process").'
        )
    if executor == "thread" and is_async:
        raise TypeError(
            f'{label} is an async function; it runs on the event loop ("async") or in a job process ("process"), '
            "not in a thread."
        )
    if executor == "process":
        path = path or import_path_of(target)
        problem = process_path_problem(path, target)
        if problem:
            raise TypeError(f"{label} {problem}.")
    return Function(
        name=name or target.__qualname__,
        coroutine=target,
        timeout_s=to_seconds(timeout),
        keep_result_s=to_seconds(keep_result),
        keep_result_forever=keep_result_forever,
        max_tries=max_tries,
        executor=executor,
        path=path,
        flow=flow,
    )


def default_name(path: str) -> str:
    """The name a function given by import path is registered under: arq's whole dotted path, or the attribute
    of a ``"module:attr"`` path."""
    return path.strip(" ").rpartition(":")[2] if ":" in path else path.strip(" ")


def hook_path(name: str, hook: Callable[..., Any] | str | None) -> str | None:
    """A process hook as the ``"module:attr"`` path a job subprocess imports it by."""
    if hook is None or isinstance(hook, str):
        return hook
    path = import_path_of(hook)
    if path is None:
        raise TypeError(f"{name} {hook!r} is not defined at the top level of a module; a job process cannot import it")
    return path
