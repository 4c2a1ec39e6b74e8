"""runner: declarative, config-driven asyncio job workers on Redis, wire-compatible with arq.

The engine's API is re-exported here with arq's names, so ``from arq import X`` becomes ``from runner import X``.
"""

from __future__ import annotations

from runner.engine import *  # noqa: F403 - the engine's public names are this package's
from runner.engine import __all__ as _engine_names

__version__ = "0.1.0"

__all__ = [*_engine_names, "__version__"]
