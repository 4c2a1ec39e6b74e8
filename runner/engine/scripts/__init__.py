"""Server-side Lua scripts: every state change of a job is one script call."""

from __future__ import annotations

from importlib.resources import files


def load(name: str) -> str:
    return files(__name__).joinpath(f"{name}.lua").read_text()


ENQUEUE = load("enqueue")
CLAIM = load("claim")
FINISH = load("finish")
HEARTBEAT = load("heartbeat")
