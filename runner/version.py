"""arq's ``arq.version`` under runner: ``VERSION`` is runner's version."""

from __future__ import annotations

VERSION = "0.1.0"

__all__ = ["VERSION"]
