"""Task module the bad_configs corpus points at: some entries are fine, most are wrong on purpose."""

from __future__ import annotations

import json
import pickle
import threading
from typing import Any

NUMBER = 5


class SomeClass:
    pass


async def send(ctx: dict[str, Any], to: str = "ops@example.com") -> str:
    return to


async def send_to(ctx: dict[str, Any], to: str, *, subject: str) -> str:
    return to


def sync_job(ctx: dict[str, Any]) -> None:
    pass


async def no_args() -> None:
    pass


def sync_hook(ctx: dict[str, Any]) -> None:
    pass


async def two_arg_hook(ctx: dict[str, Any], extra: int) -> None:
    pass


def two_arg_sync_hook(ctx: dict[str, Any], extra: int) -> None:
    pass


def takes_a_lock(ctx: dict[str, Any], lock: threading.Lock) -> None:
    pass


json_dumps = json.dumps  # returns str and cannot be read back by pickle
pickle_loads = pickle.loads
