"""runner: declarative, config-driven asyncio job workers on Redis, wire-compatible with arq.

The engine's API is re-exported here with arq's names, so ``from arq import X`` becomes ``from runner import X``;
each of arq's modules has a runner module of the same name (``arq.worker`` → ``runner.worker``, …). Each name is
imported when first used (see :mod:`runner.engine`), so the ``runner`` command starts quickly.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from runner.engine import __all__ as _engine_names
from runner.version import VERSION

if TYPE_CHECKING:  # the engine's public names are this package's (tests/test_architecture.py checks the list)
    from runner.engine import (
        ArqRedis as ArqRedis,
        CronJob as CronJob,
        FailedJobs as FailedJobs,
        Function as Function,
        Job as Job,
        JobDef as JobDef,
        JobExecutionFailed as JobExecutionFailed,
        JobResult as JobResult,
        JobSpec as JobSpec,
        JobStatus as JobStatus,
        RedisSettings as RedisSettings,
        ResultNotFound as ResultNotFound,
        Retry as Retry,
        RetryJob as RetryJob,
        RunnerRedis as RunnerRedis,
        SerializationError as SerializationError,
        Worker as Worker,
        async_check_health as async_check_health,
        check_health as check_health,
        create_pool as create_pool,
        create_worker as create_worker,
        cron as cron,
        func as func,
        get_serializer as get_serializer,
        run_worker as run_worker,
    )

__version__ = VERSION  # one home: runner/version.py (arq.version.VERSION's counterpart)

__all__ = [*_engine_names, "VERSION", "__version__"]


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # arq's layout: `cron` is both a submodule (runner.cron, arq.cron's names) and the function; importing the
        # submodule binds the module here, over the public function, so public names refuse modules
        if name in _engine_names and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

# the submodules `import arq` alone makes reachable (arq/__init__ imports from them), so that after the import
# rewrite `import runner as arq` code can still say `arq.worker.func` or `arq.connections.RedisSettings`
_ARQ_SUBMODULES = ("connections", "constants", "jobs", "typing", "utils", "version", "worker")


def __getattr__(name: str) -> Any:
    if name in _engine_names:
        from runner import engine

        value = getattr(engine, name)
        globals()[name] = value
        return value
    if name in _ARQ_SUBMODULES:
        return importlib.import_module(f"runner.{name}")  # the import binds it here
    raise AttributeError(f"module 'runner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_engine_names, *_ARQ_SUBMODULES})
