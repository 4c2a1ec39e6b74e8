"""Imports only after badtasks was imported: fine in the worker, broken in a fresh job process."""

from __future__ import annotations

import sys
from typing import Any

if "badtasks" not in sys.modules:
    raise ImportError("import badtasks first")


def crunch(ctx: dict[str, Any], n: int) -> int:
    return n * n
