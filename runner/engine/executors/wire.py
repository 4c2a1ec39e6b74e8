"""The pipe protocol between a worker and its job subprocesses: length-prefixed pickled messages.

Both ends are runner's own code in the same installation, so pickle is safe here: nothing crosses that did not
already come out of the job's payload (decoded by the queue's deserializer) or out of the job function itself.

Messages, parent to child:
    ``Init``     once, first: where to import from, the startup and shutdown hooks, the log level and format
    ``Call``     run one function (with the job it runs for, named on its log records); one ``Reply`` answers it
    (end of input) run the shutdown hook and exit 0
Child to parent:
    ``Ready``    the startup hook ran; the child waits for calls
    ``StartupFailed``  the startup hook (or an import) failed; the child exits 3
    ``Reply``    one call's outcome, with the child's resident memory afterwards
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field
from typing import IO, Any

from runner.engine.job_context import JobContext
from runner.engine.log_format import LogFormat

HEADER = struct.Struct(">I")
MAX_MESSAGE = 1 << 31  # a length past 2 GiB means the stream is out of step, not a real message


@dataclass(frozen=True, slots=True)
class Init:
    sys_path: list[str]
    startup: str | None
    shutdown: str | None
    log_level: int
    main_path: str | None = None  # the parent's __main__ script, for functions defined there
    log_format: LogFormat | None = None  # the worker's format (runner start's); None: a plain text format


@dataclass(frozen=True, slots=True)
class Call:
    function: str  # "module:qualname"
    ctx: dict[str, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    job: JobContext | None = None


@dataclass(frozen=True, slots=True)
class Ready:
    pid: int


@dataclass(frozen=True, slots=True)
class StartupFailed:
    message: str


@dataclass(frozen=True, slots=True)
class Reply:
    ok: bool
    value: Any  # the return value, or the exception the function raised
    rss_bytes: int = 0
    traceback: str = field(default="", repr=False)


def frame(message: Any) -> bytes:
    """One message as it goes on the pipe."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def read_message(stream: IO[bytes]) -> Any:
    """The next message from a blocking stream (the child's side); None at end of input."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    if size >= MAX_MESSAGE:
        raise ValueError(f"message length {size} out of range; the pipe is out of step")
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)
