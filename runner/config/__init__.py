"""The config layer: worker.toml and the environment in, validated settings and engine objects out.

loaded = load_settings("worker.toml", flags={"burst": True})   # raises ProblemList
problems = check(loaded)                                         # deep checks: imports, signatures, …
workers = build_workers(loaded.settings, base_dir=loaded.directory)  # one engine Worker per queue
"""

from __future__ import annotations

from runner.config.build import build_redis_settings, build_serializer, build_workers
from runner.config.checks import check
from runner.config.loading import LoadedConfig, load_settings
from runner.config.models import DEFAULT_QUEUE, WorkerSettings
from runner.config.problems import Problem, ProblemList, mask_url
from runner.config.sources import Origin

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
