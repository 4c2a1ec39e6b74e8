"""runner: declarative, config-driven asyncio job workers on Redis, wire-compatible with arq."""

from __future__ import annotations

__version__ = "0.1.0"
