"""What ``runner validate`` checks for ``executor = "process"``: a job subprocess must manage on its own.

A job subprocess is a fresh interpreter: it imports each process function and process hook by its path, with the
worker's ``sys.path`` but nothing else the worker did before (its own imports, its ``on_startup``). So those paths
are imported once more here, in a fresh interpreter, exactly as a subprocess would; and the job's arguments, once
decoded by the queue's serializer, must survive pickle, which carries them across.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PROCESS_HOOKS = ("process_startup", "process_shutdown")
FRESH_IMPORT_TIMEOUT_S = 60.0
_MARK = "@@runner-import-check@@"
_RUNNER_ROOT = str(Path(__file__).resolve().parents[2])
_CODE = f"""
import json, sys
from runner.engine.utils import import_string
failed = []
for index, path in enumerate(json.loads(sys.argv[1])):
    try:
        import_string(path)
    except BaseException as exc:
        failed.append([index, str(exc) or type(exc).__name__])
print("\\n{_MARK}" + json.dumps(failed))
"""

KeyPath = tuple[str, ...]


def fresh_import_problems(paths: Sequence[tuple[KeyPath, str]], directory: Path) -> list[tuple[KeyPath, str]]:
    """``(key path, message)`` for each import path a fresh interpreter cannot import."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(directory), _RUNNER_ROOT, env.get("PYTHONPATH")) if p)
    argument = json.dumps([import_path for _, import_path in paths])
    where = paths[0][0]
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CODE, argument],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=FRESH_IMPORT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [
            (
                where,
                f"importing it in a fresh interpreter, as a job process does, took over {FRESH_IMPORT_TIMEOUT_S:g}s",
            )
        ]
    except OSError as exc:
        return [(where, f"could not start a fresh interpreter to import it as a job process does: {exc}")]
    marked = [line for line in done.stdout.splitlines() if line.startswith(_MARK)]
    if not marked:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [(where, f"a fresh interpreter ended before it could import it as a job process does: {last}")]
    problems = []
    for index, message in json.loads(marked[-1][len(_MARK) :]):
        key, import_path = paths[index]
        text = message.strip().removesuffix(".")
        problems.append(
            (key, f'"{import_path}" does not import in a fresh interpreter, as a job process needs: {text}')
        )
    return problems


def crossing_problem(dumps: Callable[[Any], Any], loads: Callable[[Any], Any], sample: dict[str, Any]) -> str | None:
    """Why arguments decoded by the queue's serializer could not be pickled to a job process, or None."""
    try:
        decoded = loads(dumps(dict(sample)))
        pickle.loads(pickle.dumps((decoded.get("a"), decoded.get("k"))))
    except Exception as exc:
        return f"arguments this serializer decodes cannot cross to a job process (pickle): {type(exc).__name__}: {exc}"
    return None


def _uncrossable(annotation: Any) -> str | None:
    """The name of a type that pickle cannot carry to a job process, when ``annotation`` is (or holds) one."""
    import asyncio
    import collections.abc as abc
    import io
    import socket
    import threading
    import types
    import typing

    if annotation is threading.Lock or annotation is threading.RLock:  # factories, not classes
        return "threading.Lock" if annotation is threading.Lock else "threading.RLock"
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(annotation):
            found = _uncrossable(arg)
            if found:
                return found
        return None
    target = origin or annotation
    if not isinstance(target, type):
        return None
    never: tuple[type, ...] = (
        abc.Generator,
        abc.AsyncGenerator,
        abc.Coroutine,
        abc.AsyncIterator,
        io.IOBase,
        socket.socket,
        asyncio.Future,
        asyncio.Event,
        asyncio.Lock,
        asyncio.AbstractEventLoop,
        type(threading.Lock()),
    )
    try:
        import redis
        import redis.asyncio

        never += (redis.Redis, redis.asyncio.Redis)
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    try:
        if issubclass(target, never):
            return target.__name__
    except TypeError:
        return None
    return None


def signature_crossing_problem(import_path: str, obj: Any) -> str | None:
    """Why the annotated arguments or result of ``obj`` cannot cross to or from a job process, or None."""
    import inspect
    import typing

    try:
        hints = typing.get_type_hints(obj)
        params = list(inspect.signature(obj).parameters)
    except Exception:  # unresolvable annotations or no signature: nothing to say
        return None
    for name in params[1:]:  # the first is ctx, built in the job process itself
        found = _uncrossable(hints.get(name))
        if found:
            return (
                f'"{import_path}" takes {name}: {found}, which pickle cannot carry to a job process; '
                "pass plain data and build the object in the job"
            )
    found = _uncrossable(hints.get("return"))
    if found:
        return f'"{import_path}" returns {found}, which pickle cannot carry back from a job process; return plain data'
    return None
