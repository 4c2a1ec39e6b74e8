"""The job subprocess: ``python -m runner.engine.executors.child``, driven by a ``ProcessPool`` over its stdin/stdout.

It takes the pipes for the protocol (runner/engine/executors/wire.py) and points its own stdout at stderr, so a
job's ``print`` shows up in the worker's output instead of corrupting a message. It runs one call at a time, sync
functions directly and async ones on an event loop kept for its life, and exits when its input ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import pickle
import runpy
import signal
import sys
import traceback
from typing import IO, Any

from runner.engine.executors.wire import Call, Init, Ready, Reply, StartupFailed, frame, read_message
from runner.engine.job_context import CURRENT_JOB, JobContextFilter, enter_job
from runner.engine.log_format import formatter_for
from runner.engine.procinfo import rss_bytes

logger = logging.getLogger("runner.process")

EXIT_STARTUP_FAILED = 3
# CPU-bound jobs yield to the worker's own event loop (and a local Redis): the CPU is theirs whenever the loop
# does not need it, and async jobs on the same worker are picked up without waiting behind them
NICE_INCREMENT = 10


def _take_pipes() -> tuple[IO[bytes], IO[bytes]]:
    """The protocol's streams; fd 1 becomes stderr and fd 0 /dev/null, so user code cannot touch the pipes."""
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return proto_in, proto_out


def _die_with_parent() -> None:
    """On Linux, ask the kernel to kill this process when the worker dies, so a CPU job never outlives it."""
    parent = os.getppid()
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the worker died before the request took effect
        os._exit(1)


class Child:
    """One subprocess's state: the hooks' ctx, resolved functions, the event loop for async ones."""

    def __init__(self, init: Init, out: IO[bytes]) -> None:
        self.init = init
        self.out = out
        self.ctx: dict[str, Any] = {}
        self.functions: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def send(self, message: Any) -> None:
        self.out.write(frame(message))
        self.out.flush()

    def call_hook(self, path: str) -> None:
        from runner.engine.utils import import_string

        self.run(import_string(path), (self.ctx,), {})

    def run(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            result = self._loop.run_until_complete(_awaited(result))
        return result

    def resolve(self, path: str) -> Any:
        fn = self.functions.get(path)
        if fn is None:
            from runner.engine.functions import Function
            from runner.engine.utils import import_string

            fn = import_string(path)
            if isinstance(fn, Function):
                fn = fn.coroutine
            self.functions[path] = fn
        return fn

    def handle(self, call: Call) -> None:
        token = enter_job(call.job) if call.job is not None else None
        try:
            self._handle(call)
        finally:
            if token is not None:
                CURRENT_JOB.reset(token)

    def _handle(self, call: Call) -> None:
        try:
            value = self.run(self.resolve(call.function), ({**self.ctx, **call.ctx}, *call.args), call.kwargs)
        except (SystemExit, KeyboardInterrupt) as exc:
            from runner.errors import JobExecutionFailed

            message = f"the job raised {type(exc).__name__}({exc}), which would have ended its process"
            error = JobExecutionFailed(message)
            self.send_reply(False, error, "")
        except BaseException as exc:
            self.send_reply(False, exc, "".join(traceback.format_exception(exc)))
        else:
            self.send_reply(True, value, "")

    def send_reply(self, ok: bool, value: Any, tb: str) -> None:
        rss = rss_bytes()
        try:
            message = frame(Reply(ok, value, rss, tb))
            if not ok:
                pickle.loads(message[4:])  # an exception that pickles but cannot be rebuilt fails here, not there
        except Exception as exc:
            from runner.errors import JobExecutionFailed

            what = "result" if ok else f"exception ({type(value).__name__}: {value})"
            problem = f"the job's {what} cannot cross the process boundary: {type(exc).__name__}: {exc}"
            message = frame(Reply(False, JobExecutionFailed(problem), rss, tb))
        self.out.write(message)
        self.out.flush()

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _load_main(path: str) -> None:
    """Load the worker's ``__main__`` script as multiprocessing's spawn does, so functions defined there resolve."""
    namespace = runpy.run_path(path, run_name="__mp_main__")
    module = type(sys)("__mp_main__")
    module.__dict__.update(namespace)
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module


def _setup_logging(init: Init) -> None:
    """Log to stderr (the worker's) at the worker's level, in its format, naming the job a record was logged in."""
    handler = logging.StreamHandler(sys.stderr)
    if init.log_format is not None:
        handler.setFormatter(formatter_for(init.log_format))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s [pid {os.getpid()}] %(message)s"))
    handler.addFilter(JobContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(init.log_level)


def main() -> int:
    proto_in, proto_out = _take_pipes()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the worker's to handle, not ours
    _die_with_parent()
    with contextlib.suppress(OSError):
        os.nice(NICE_INCREMENT)
    init = read_message(proto_in)
    if not isinstance(init, Init):
        return 2
    sys.path[:] = init.sys_path
    _setup_logging(init)
    child = Child(init, proto_out)
    try:
        if init.main_path:
            _load_main(init.main_path)
        if init.startup:
            child.call_hook(init.startup)
    except BaseException as exc:
        hook = f'process_startup "{init.startup}"' if init.startup else "loading the worker's main script"
        child.send(StartupFailed(f"{hook} failed: {type(exc).__name__}: {exc}"))
        return EXIT_STARTUP_FAILED
    child.send(Ready(os.getpid()))
    while True:
        call = read_message(proto_in)
        if call is None:
            break
        child.handle(call)
    if init.shutdown:
        try:
            child.call_hook(init.shutdown)
        except Exception as exc:
            logger.warning('process_shutdown "%s" failed: %s: %s', init.shutdown, type(exc).__name__, exc)
    child.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
