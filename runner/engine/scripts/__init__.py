"""The server-side Lua scripts: every state change of a job is one script, one file, with a header.

Each header lists KEYS, ARGV, the return value and the error codes. Every key a script touches comes from the
caller's ``KeyLayout`` (runner/engine/keys.py) through KEYS: whole keys where the caller knows the ids, key
prefixes where the script finds the ids itself (claim). A snippet shared by several scripts lives once in
``include/`` and is pulled in by a ``-- #include <name>`` line.

A ``-- #flags: <flags>`` line in the header becomes the script's shebang (``#!lua flags=<flags>``; ``none`` gives a
bare ``#!lua``): Redis 7 and Valkey check a flagged script against ``maxmemory`` once, before it runs, so it never
stops halfway through its writes, and ``allow-oom`` lets one run at the limit.
"""

from __future__ import annotations

import re
from importlib.resources import files

_INCLUDE = re.compile(r"^-- #include (\w+)$", re.MULTILINE)
_FLAGS = re.compile(r"^-- #flags: ([\w,-]+)$", re.MULTILINE)


def _read(path: str) -> str:
    return files(__name__).joinpath(path).read_text()


def load(name: str, *, flags: str | None = None) -> str:
    """The source of ``<name>.lua``, with its includes in place and its flags (or ``flags``) as its shebang."""
    source = _INCLUDE.sub(lambda match: _read(f"include/{match.group(1)}.lua").rstrip("\n"), _read(f"{name}.lua"))
    found = _FLAGS.search(source)
    if found is None and flags is None:
        return source
    wanted = flags or (found.group(1) if found else "none")
    return ("#!lua\n" if wanted == "none" else f"#!lua flags={wanted}\n") + source


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
    "enqueue_flow",
    "flow_release",
)

ENQUEUE = load("enqueue")
CLAIM = load("claim")
HEARTBEAT = load("heartbeat")
FINISH = load("finish")
# the same, for a Redis out of memory: runs at the limit, and is sent with results left out (finish.lua's header)
FINISH_WITHOUT_RESULTS = load("finish", flags="allow-oom")
REQUEUE_FAILED = load("requeue_failed")
PURGE = load("purge")
CRON_LAST = load("cron_last")
# read and steer queues from the dashboard (runner/engine/browse.py, steering.py)
QUEUE_SUMMARY = load("queue_summary")
DELETE_JOB = load("delete_job")
PURGE_FAILED = load("purge_failed")
# flow control (runner/engine/flow.py)
ENQUEUE_FLOW = load("enqueue_flow")
FLOW_RELEASE = load("flow_release")
