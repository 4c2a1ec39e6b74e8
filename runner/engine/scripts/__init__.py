"""The server-side Lua scripts: every state change of a job is one script, one file, with a header.

Each header lists KEYS, ARGV, the return value and the error codes. Every key a script touches comes from the
caller's ``KeyLayout`` (runner/engine/keys.py) through KEYS: whole keys where the caller knows the ids, key
prefixes where the script finds the ids itself (claim). A snippet shared by several scripts lives once in
``include/`` and is pulled in by a ``-- #include <name>`` line.
"""

from __future__ import annotations

import re
from importlib.resources import files

_INCLUDE = re.compile(r"^-- #include (\w+)$", re.MULTILINE)


def _read(path: str) -> str:
    return files(__name__).joinpath(path).read_text()


def load(name: str) -> str:
    """The source of ``<name>.lua``, with its includes in place."""
    return _INCLUDE.sub(lambda match: _read(f"include/{match.group(1)}.lua").rstrip("\n"), _read(f"{name}.lua"))


NAMES = (
    "enqueue",
    "claim",
    "heartbeat",
    "finish",
    "requeue_failed",
    "purge",
    "cron_last",
    "queue_summary",
    "delete_job",
    "purge_failed",
)

ENQUEUE = load("enqueue")
CLAIM = load("claim")
HEARTBEAT = load("heartbeat")
FINISH = load("finish")
REQUEUE_FAILED = load("requeue_failed")
PURGE = load("purge")
CRON_LAST = load("cron_last")
# read and steer queues from the dashboard (runner/engine/browse.py, steering.py)
QUEUE_SUMMARY = load("queue_summary")
DELETE_JOB = load("delete_job")
PURGE_FAILED = load("purge_failed")
