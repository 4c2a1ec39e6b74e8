"""Workers from arq-style settings classes: ``get_kwargs``, ``create_worker``, ``run_worker``, ``check_health``.

A settings class (or a dict) holds ``Worker`` keyword arguments as attributes::

    class WorkerSettings:
        functions = [send_email]
        redis_settings = RedisSettings(host="cache")
        max_jobs = 20

As in arq, only the class's own attributes are read (``vars(cls)``, not its bases'), and attributes that are not
``Worker`` parameters are ignored.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

from runner.engine.connection import RedisSettings
from runner.engine.health import async_check_health
from runner.engine.worker import Worker

# arq's marker for "the job produced no result yet"; kept for code that imports it
no_result = object()


def get_kwargs(settings_cls: Any) -> dict[str, Any]:
    """The ``Worker`` keyword arguments a settings class (or dict) defines."""
    worker_args = set(inspect.signature(Worker).parameters)
    found = settings_cls if isinstance(settings_cls, Mapping) else vars(settings_cls)
    return {key: value for key, value in found.items() if key in worker_args}


def create_worker(settings_cls: Any, **kwargs: Any) -> Worker:
    """A ``Worker`` built from a settings class; ``kwargs`` override its attributes."""
    return Worker(**{**get_kwargs(settings_cls), **kwargs})


def run_worker(settings_cls: Any, **kwargs: Any) -> Worker:
    """Build a worker from a settings class and run it until it stops (``Worker.run()``); returns the worker."""
    worker = create_worker(settings_cls, **kwargs)
    worker.run()
    return worker


def check_health(settings_cls: Any = None, health_check_key: str | None = None, queue_name: str | None = None) -> int:
    """arq's health check of a settings class: 0 when its queue's health record exists, else 1.

    ``settings_cls`` may also be a ``RedisSettings`` (or None) with the key and queue given beside it, the form
    runner 0.1 took.
    """
    if settings_cls is None or isinstance(settings_cls, RedisSettings):
        return asyncio.run(async_check_health(settings_cls, health_check_key, queue_name))
    found = get_kwargs(settings_cls)
    return asyncio.run(
        async_check_health(found.get("redis_settings"), found.get("health_check_key"), found.get("queue_name"))
    )
