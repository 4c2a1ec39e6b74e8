"""What arq's ``arq.cli`` module defines, for code that imports it; and running an arq settings class.

arq's command is ``arq app.worker.WorkerSettings [--burst] [--check] [--watch DIR] [-v]``; runner's is
``runner start app.worker.WorkerSettings [--burst] [--watch DIR] [-v]`` (and ``runner check`` for health). The
class is read as ``runner import-arq`` reads it (``module.Class`` or ``module:Class``, from the current
directory), then run as arq runs it: ``Worker(**get_kwargs(WorkerSettings))``.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

from runner.cli.supervisor import py_mtimes
from runner.config.arq_import import load_arq_settings
from runner.engine.launch import check_health, create_worker, run_worker
from runner.logs import default_log_config
from runner.utils import import_string
from runner.version import VERSION

burst_help = "Batch mode: exit once no jobs are found in any queue."
health_check_help = "Health Check: run a health check and exit."
watch_help = "Watch a directory and reload the worker upon changes."
verbose_help = "Enable verbose output."
logdict_help = "Import path for a dictionary in logdict form, to configure Arq's own logging."

_SETTINGS_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*([.:][A-Za-z_]\w*)$")


def is_settings_path(target: str) -> bool:
    """Whether ``target`` names a Python settings class (``app.worker.WorkerSettings``) rather than a file."""
    return not target.endswith(".toml") and not Path(target).exists() and bool(_SETTINGS_PATH.match(target))


def load_settings_class(target: str) -> Any:
    """The settings class ``target`` names, imported with the current directory first on ``sys.path``.

    Raises:
        ConfigError: the path is malformed or does not resolve.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return load_arq_settings(target)


async def watch_reload(path: str, worker_settings: Any) -> None:
    """Run a worker from ``worker_settings``, and restart it whenever a ``.py`` file under ``path`` changes.

    arq's function of the same name (which needs watchfiles); this one polls the files twice a second. It returns
    once the worker stops by itself (a signal, or the end of a burst).
    """
    directory = Path(path)
    while True:
        worker = create_worker(worker_settings)
        task = asyncio.create_task(worker.async_run())
        seen = py_mtimes(directory)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.5)
                if not task.done() and py_mtimes(directory) != seen:
                    print("\nfiles changed, reloading runner worker...")
                    break
            else:
                await task  # stopped by itself: raise what it raised
                return
        finally:
            await worker.close()


__all__ = [
    "burst_help",
    "health_check_help",
    "is_settings_path",
    "load_settings_class",
    "logdict_help",
    "verbose_help",
    "watch_help",
    "watch_reload",
    # arq.cli imports these from arq's other modules, so arq code may import them from arq.cli too
    "VERSION",
    "check_health",
    "create_worker",
    "default_log_config",
    "import_string",
    "run_worker",
]
