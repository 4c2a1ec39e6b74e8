"""A pool of job subprocesses for CPU-bound functions: a timeout or an abort really stops the job.

Each subprocess (runner/engine/executors/child.py) runs one call at a time. A call that runs past its timeout, is
cancelled (an abort, a forced stop) or whose process dies (a segfault, the OOM killer) ends that process; a new one
takes its place, and only that call fails. A process that has run ``max_jobs_per_process`` calls, or whose resident
memory passed ``max_memory_per_process``, is retired between calls: its replacement starts first, then it runs its
shutdown hook and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.engine.executors.wire import HEADER, Call, Init, Ready, Reply, StartupFailed, frame
from runner.engine.job_context import CURRENT_JOB
from runner.engine.log_format import format_in_use
from runner.engine.procinfo import format_bytes
from runner.errors import JobExecutionFailed, RunnerError

logger = logging.getLogger("runner.process")

RESPAWN_FIRST_S = 0.5
RESPAWN_MAX_S = 30.0
_RUNNER_ROOT = str(Path(__file__).resolve().parents[3])  # the directory holding the runner package


class ProcessStartError(RunnerError):
    """A job subprocess could not start: its startup hook raised, or it died before it was ready."""

    default_message = "A job process could not start."


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a job subprocess, attached as its ``__cause__``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\n(in the job process)\n{self.text}"


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Proc:
    """One subprocess and its counters."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pid = process.pid
        self.calls = 0
        self.rss_bytes = 0

    @property
    def exited(self) -> bool:
        return self.process.returncode is not None

    async def send(self, message: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(frame(message))
        await self.process.stdin.drain()

    async def receive(self) -> Any:
        assert self.process.stdout is not None
        header = await self.process.stdout.readexactly(HEADER.size)
        (size,) = HEADER.unpack(header)
        return pickle.loads(await self.process.stdout.readexactly(size))

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class ProcessPool:
    """Up to ``size`` job subprocesses, started by ``start()`` and ended by ``close()``.

    Args:
        size: subprocesses kept running.
        startup, shutdown: ``"module:attr"`` hooks each subprocess runs once, ``hook(ctx)`` (sync or async); the ctx
            the startup hook fills is the base of every call's ctx in that subprocess.
        max_jobs_per_process: retire a subprocess after this many calls (None: never).
        max_memory_per_process: retire a subprocess whose resident memory passed this many bytes after a call.
        start_timeout_s: the longest a subprocess may take to import and run its startup hook.
    """

    def __init__(
        self,
        size: int,
        *,
        startup: str | None = None,
        shutdown: str | None = None,
        max_jobs_per_process: int | None = None,
        max_memory_per_process: int | None = None,
        start_timeout_s: float = 60.0,
    ) -> None:
        if size < 1:
            raise ValueError(f"a process pool needs at least 1 process (got {size})")
        self.size = size
        self.startup = startup
        self.shutdown = shutdown
        self.max_jobs_per_process = max_jobs_per_process
        self.max_memory_per_process = max_memory_per_process
        self.start_timeout_s = start_timeout_s
        self.recycled = 0
        self.replaced = 0
        self._idle: deque[_Proc] = deque()
        self._busy: set[_Proc] = set()
        self._waiters: deque[asyncio.Future[_Proc]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._dying: set[_Proc] = set()  # killed or told to exit, not yet reaped
        self._closing = False
        self._started = False

    # -- life -------------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every subprocess and wait until each ran its startup hook.

        Raises:
            ProcessStartError: a subprocess could not start; the others are stopped again.
        """
        results = await asyncio.gather(*(self._spawn() for _ in range(self.size)), return_exceptions=True)
        started = [r for r in results if isinstance(r, _Proc)]
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            for proc in started:
                proc.kill()
            await asyncio.gather(*(p.process.wait() for p in started), return_exceptions=True)
            raise failure
        self._idle.extend(started)
        self._started = True
        logger.debug("started %d job processes: pids %s", len(started), ", ".join(str(p.pid) for p in started))

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop every subprocess: idle ones run their shutdown hook and exit; any still running a call is killed."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(JobExecutionFailed("the worker's job processes were closed"))
        procs = list(self._idle) + list(self._busy) + list(self._dying)
        self._idle.clear()
        for proc in self._busy:
            proc.kill()
        for proc in procs:
            if proc.process.stdin is not None and not proc.exited:
                proc.process.stdin.close()
        await self._reap(procs, grace_s)

    async def _reap(self, procs: list[_Proc], grace_s: float) -> None:
        if not procs:
            return
        self._dying.update(procs)
        waits = [asyncio.ensure_future(p.process.wait()) for p in procs]
        try:
            _, pending = await asyncio.wait(waits, timeout=grace_s)
            if pending:
                for proc in procs:
                    if not proc.exited:
                        logger.warning("job process %d did not exit within %gs; killing it", proc.pid, grace_s)
                        proc.kill()
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            if not self._closing or all(p.exited for p in procs):
                self._dying.difference_update(procs)

    @property
    def pids(self) -> list[int]:
        """The pids of the subprocesses alive now (idle or busy)."""
        return sorted(p.pid for p in [*self._idle, *self._busy] if not p.exited)

    # -- running one call -------------------------------------------------------------------------------------------

    async def run(
        self,
        function: str,
        ctx: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        timeout_s: float | None = None,
        label: str = "",
        on_start: Callable[[], None] | None = None,
    ) -> Any:
        """Run ``function(ctx, *args, **kwargs)`` in a free subprocess and return what it returned.

        The timeout starts when the call reaches its subprocess (waiting for a free one does not count); that is
        when ``on_start`` is called.

        Raises:
            TimeoutError: the call ran past ``timeout_s``; its subprocess was killed.
            JobExecutionFailed: the subprocess died during the call, or its arguments or result cannot be pickled.
            asyncio.CancelledError: the caller was cancelled; the subprocess was killed.
            Exception: whatever the function raised, with its traceback from the subprocess as ``__cause__``.
        """
        proc = await self._acquire()
        what = label or function
        try:
            message = frame(Call(function, ctx, args, kwargs, CURRENT_JOB.get()))
        except Exception as exc:
            self._release(proc)
            raise JobExecutionFailed(
                f"the arguments of {what} cannot cross to a job process: {type(exc).__name__}: {exc}"
            ) from exc
        if on_start is not None:
            on_start()
        try:
            assert proc.process.stdin is not None
            proc.process.stdin.write(message)
            async with asyncio.timeout(timeout_s):
                await proc.process.stdin.drain()
                reply: Reply = await proc.receive()
        except TimeoutError:
            self._discard(proc, f"{what} ran past its timeout of {timeout_s:g}s")
            raise TimeoutError(
                f"the job ran longer than its timeout of {timeout_s:g}s; its process (pid {proc.pid}) was killed"
            ) from None
        except asyncio.CancelledError:
            self._discard(proc, f"{what} was cancelled")
            raise
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError, EOFError) as exc:
            code = await self._wait_exit(proc)
            self._discard(proc, None)
            logger.warning("job process %d died (%s) while running %s; starting another", proc.pid, code, what)
            raise JobExecutionFailed(f"the job's process (pid {proc.pid}) died: {code}") from exc
        self._finished(proc, reply.rss_bytes)
        if reply.ok:
            return reply.value
        error = reply.value
        if reply.traceback and isinstance(error, BaseException):
            error.__cause__ = RemoteTraceback(reply.traceback)
        raise error

    @staticmethod
    async def _wait_exit(proc: _Proc) -> str:
        """How a process whose pipe closed ended; one that closed its pipe but lives on is killed."""
        for kill in (False, True):
            if kill:
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.process.wait()), 2)
                break
        return describe_exit(proc.process.returncode)

    async def _acquire(self) -> _Proc:
        if self._closing:
            raise JobExecutionFailed("the worker's job processes are closed")
        while self._idle:
            proc = self._idle.popleft()
            if proc.exited:  # died while idle (killed from outside): replace it, try the next
                code = describe_exit(proc.process.returncode)
                logger.warning("idle job process %d died (%s); starting another", proc.pid, code)
                self._replace()
                continue
            self._busy.add(proc)
            return proc
        waiter: asyncio.Future[_Proc] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            proc = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # it was handed over just as we were cancelled: pass it on
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        self._busy.add(proc)
        return proc

    def _release(self, proc: _Proc) -> None:
        self._busy.discard(proc)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(proc)
                return
        self._idle.append(proc)

    def _finished(self, proc: _Proc, rss: int) -> None:
        proc.calls += 1
        proc.rss_bytes = rss
        reason = None
        if self.max_jobs_per_process is not None and proc.calls >= self.max_jobs_per_process:
            reason = f"after {proc.calls} jobs (max_jobs_per_process = {self.max_jobs_per_process})"
        elif self.max_memory_per_process is not None and rss > self.max_memory_per_process:
            reason = (
                f"at {format_bytes(rss)} resident (max_memory_per_process = "
                f"{format_bytes(self.max_memory_per_process)})"
            )
        if reason is None or self._closing:
            self._release(proc)
            return
        self._busy.discard(proc)
        self._dying.add(proc)
        self.recycled += 1
        logger.info("recycling job process %d %s", proc.pid, reason)
        self._background(self._retire(proc))

    async def _retire(self, proc: _Proc) -> None:
        """The replacement first, then the old process runs its shutdown hook and exits."""
        await self._respawn()
        assert proc.process.stdin is not None
        proc.process.stdin.close()
        await self._reap([proc], 10.0)

    def _discard(self, proc: _Proc, why: str | None) -> None:
        """End a process that cannot be reused and start its replacement."""
        self._busy.discard(proc)
        self._dying.add(proc)
        if why is not None:
            logger.warning("killing job process %d: %s", proc.pid, why)
        proc.kill()
        self._background(self._reap([proc], 5.0))
        self._replace()

    def _replace(self) -> None:
        self.replaced += 1
        if not self._closing:
            self._background(self._respawn())

    async def _respawn(self) -> None:
        """Start one subprocess, retrying with a growing pause while its startup fails."""
        delay = RESPAWN_FIRST_S
        while not self._closing:
            try:
                proc = await self._spawn()
            except (ProcessStartError, OSError) as exc:
                logger.error("could not start a job process (%s); trying again in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESPAWN_MAX_S)
                continue
            if self._closing:
                proc.kill()
                await proc.process.wait()
                return
            self._release(proc)
            return

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- starting one subprocess ------------------------------------------------------------------------------------

    async def _spawn(self) -> _Proc:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_RUNNER_ROOT, env.get("PYTHONPATH")) if p)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "runner.engine.executors.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        proc = _Proc(process)
        try:
            await proc.send(self._init())
            async with asyncio.timeout(self.start_timeout_s):
                answer = await proc.receive()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError) as exc:
            proc.kill()
            await process.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            if isinstance(exc, TimeoutError):
                raise ProcessStartError(
                    f"a job process did not start within {self.start_timeout_s:g}s (its startup hook may hang)"
                ) from None
            code = describe_exit(process.returncode)
            raise ProcessStartError(f"a job process died while starting ({code})") from None
        if isinstance(answer, StartupFailed):
            await process.wait()
            raise ProcessStartError(answer.message)
        if not isinstance(answer, Ready):
            proc.kill()
            await process.wait()
            raise ProcessStartError(f"a job process answered {type(answer).__name__} instead of Ready")
        return proc

    def _init(self) -> Init:
        main = sys.modules.get("__main__")
        main_path = getattr(main, "__file__", None)
        spec = getattr(main, "__spec__", None)
        # a script run by path may define job functions; a module run with -m is imported by name instead
        load_main = main_path if (spec is None and main_path and main_path.endswith(".py")) else None
        return Init(
            sys_path=list(sys.path),
            startup=self.startup,
            shutdown=self.shutdown,
            log_level=logging.getLogger("runner").getEffectiveLevel(),
            main_path=load_main,
            log_format=format_in_use(),
        )
