"""Checks, in a fresh interpreter, that runner has every name ``arq_names.py`` found in arq; prints what it lacks.

    python arq_names.py | python runner_names.py   →   a JSON list of problems (empty: none)

A fresh process, so that a submodule only counts as reachable from ``import runner`` when ``import runner`` itself
makes it so, not because a test imported it earlier. A re-exported name must be the very object of the module it
comes from (``runner.worker.RedisSettings is runner.connections.RedisSettings``), as in arq.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from typing import Any


def _runner_module(arq_module: str) -> types.ModuleType:
    """runner's module for one of arq's ("" is the package)."""
    return importlib.import_module(f"runner.{arq_module}" if arq_module else "runner")


def problems(api: dict[str, Any]) -> list[str]:
    import runner

    found = []
    for name in api["submodules"]:  # before anything else is imported
        value = getattr(runner, name, None)
        if not isinstance(value, types.ModuleType) or value.__name__ != f"runner.{name}":
            found.append(f"`import runner as arq; arq.{name}` is not the module runner.{name} (got {value!r})")
    for module, names in api["defined"].items():
        target = _runner_module(module)
        found += [f"{target.__name__}.{name} is missing" for name in names if not hasattr(target, name)]
    for module, names in api["reexported"].items():
        target = _runner_module(module)
        for name, source_module in names.items():
            if not hasattr(target, name):
                found.append(f"{target.__name__}.{name} is missing (arq's comes from arq.{source_module})")
            elif getattr(target, name) is not getattr(_runner_module(source_module), name, None):
                found.append(f"{target.__name__}.{name} is not runner.{source_module}.{name}")
    return found


def main() -> None:
    sys.stdout.write(json.dumps(problems(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
