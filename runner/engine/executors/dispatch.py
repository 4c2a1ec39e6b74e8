"""One worker's executors: how a job function is called on the loop, in a thread or in a job subprocess.

The job runner hands every call here and sees the same three endings whatever the executor: the value, the
function's exception (``Retry`` included), ``TimeoutError`` past the timeout, or ``CancelledError`` when the job
was aborted or the worker stopped. What each executor can do about a timeout or a cancel differs:

    async    the coroutine is cancelled at its next await
    thread   the call is given up at once and ``ctx["cancel_event"]`` is set; the function runs on until it returns
    process  the job subprocess is killed and replaced
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from runner.engine.executors.processes import ProcessPool
from runner.engine.executors.threads import ThreadCall, ThreadPool
from runner.engine.functions import Function
from runner.errors import JobExecutionFailed

# the ctx keys a job subprocess gets from the worker; the rest of its ctx comes from its process_startup hook
PROCESS_CTX_KEYS = ("job_id", "job_try", "enqueue_time", "score")


class JobExecutors:
    """The thread pool and (when a function needs one) the process pool of one worker.

    Args:
        threads: most threads running ``def`` jobs at once.
        processes: job subprocesses, started only when a function has ``executor = "process"``.
        process_startup, process_shutdown: ``"module:attr"`` hooks run in each job subprocess.
        max_jobs_per_process, max_memory_per_process: when a job subprocess is replaced (None: never).
    """

    def __init__(
        self,
        *,
        threads: int,
        processes: int,
        process_startup: str | None = None,
        process_shutdown: str | None = None,
        max_jobs_per_process: int | None = None,
        max_memory_per_process: int | None = None,
    ) -> None:
        self.threads = ThreadPool(threads)
        self.process_count = processes
        self.process_startup = process_startup
        self.process_shutdown = process_shutdown
        self.max_jobs_per_process = max_jobs_per_process
        self.max_memory_per_process = max_memory_per_process
        self.processes: ProcessPool | None = None

    async def start(self, functions: dict[str, Function]) -> None:
        """Start the job subprocesses if a function runs on them.

        Raises:
            ProcessStartError: a job subprocess could not start (its startup hook failed).
        """
        if any(function.executor == "process" for function in functions.values()):
            self.processes = ProcessPool(
                self.process_count,
                startup=self.process_startup,
                shutdown=self.process_shutdown,
                max_jobs_per_process=self.max_jobs_per_process,
                max_memory_per_process=self.max_memory_per_process,
            )
            await self.processes.start()

    async def close(self) -> None:
        self.threads.close()
        if self.processes is not None:
            await self.processes.close()
            self.processes = None

    async def call(
        self,
        function: Function,
        ctx: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        timeout_s: float | None,
        label: str,
        on_start: Callable[[], None],
        on_thread: Callable[[ThreadCall], None] | None = None,
    ) -> Any:
        """Call ``function`` on its executor and return its value; see the module docstring for how it ends.

        ``on_start`` is called when the function starts running (its timeout starts then); ``on_thread`` gets the
        thread call of a ``def`` job, to tell later whether its function still runs.
        """
        if function.executor == "thread":
            cancel_event = threading.Event()
            ctx["cancel_event"] = cancel_event  # a function that checks it can stop early when given up
            call = self.threads.submit(function.coroutine, (ctx, *args), kwargs, cancel_event=cancel_event, label=label)
            if on_thread is not None:
                on_thread(call)
            try:
                return await self.threads.wait(call, timeout_s, on_start)
            except TimeoutError:
                raise TimeoutError(
                    f"the job ran longer than its timeout of {timeout_s:g}s; its thread runs on until the function "
                    "returns (a thread cannot be stopped)"
                ) from None
        if function.executor == "process":
            if self.processes is None:
                raise JobExecutionFailed("the worker's job processes are not running")
            assert function.path is not None
            job_ctx = {key: ctx[key] for key in PROCESS_CTX_KEYS if key in ctx}
            return await self.processes.run(
                function.path, job_ctx, args, kwargs, timeout_s=timeout_s, label=label, on_start=on_start
            )
        on_start()
        if timeout_s is None:  # no limit, or the caller's own (the job runner's deadline timer)
            return await contained(function.coroutine(ctx, *args, **kwargs))
        async with asyncio.timeout(timeout_s):
            return await contained(function.coroutine(ctx, *args, **kwargs))


async def contained(job: Awaitable[Any]) -> Any:
    """Await a job function; a ``sys.exit()`` or ``KeyboardInterrupt`` inside it fails that job only.

    Left alone, either would end the event loop, and every worker that took the job again would die the same way.
    """
    try:
        return await job
    except (SystemExit, KeyboardInterrupt) as exc:
        message = f"the job raised {type(exc).__name__}({exc}), which would have stopped the worker"
        raise JobExecutionFailed(message) from exc
