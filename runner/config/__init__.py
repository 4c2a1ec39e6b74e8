"""The config layer: worker.toml and the environment in, validated settings and engine objects out.

loaded = load_settings("worker.toml", flags={"burst": True})   # raises ProblemList
problems = check(loaded)                                         # deep checks: imports, signatures, …
workers = build_workers(loaded.settings, base_dir=loaded.directory)  # one engine Worker per queue

The names are imported when first used, so a command that only validates never imports the worker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.config.build import (
        build_redis_settings as build_redis_settings,
        build_serializer as build_serializer,
        build_workers as build_workers,
    )
    from runner.config.checks import check as check
    from runner.config.loading import LoadedConfig as LoadedConfig, load_settings as load_settings
    from runner.config.models import DEFAULT_QUEUE as DEFAULT_QUEUE, WorkerSettings as WorkerSettings
    from runner.config.problems import Problem as Problem, ProblemList as ProblemList, mask_url as mask_url
    from runner.config.sources import Origin as Origin

# public name -> the module that defines it (tests/test_architecture.py checks this against the imports above)
EXPORTS: dict[str, str] = {
    "build_redis_settings": "runner.config.build",
    "build_serializer": "runner.config.build",
    "build_workers": "runner.config.build",
    "check": "runner.config.checks",
    "DEFAULT_QUEUE": "runner.config.models",
    "WorkerSettings": "runner.config.models",
    "Problem": "runner.config.problems",
    "ProblemList": "runner.config.problems",
    "mask_url": "runner.config.problems",
    "LoadedConfig": "runner.config.loading",
    "load_settings": "runner.config.loading",
    "Origin": "runner.config.sources",
}

# written out, so that tools that read the source (mkdocstrings, a star import for type checkers) see the
# names; tests/test_architecture.py checks it is EXPORTS' keys
__all__ = [
    "DEFAULT_QUEUE",
    "LoadedConfig",
    "Origin",
    "Problem",
    "ProblemList",
    "WorkerSettings",
    "build_redis_settings",
    "build_serializer",
    "build_workers",
    "check",
    "load_settings",
    "mask_url",
]


def __getattr__(name: str) -> Any:
    module = EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runner.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *EXPORTS})
