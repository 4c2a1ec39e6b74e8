"""The real arq, from PyPI, in its own venv (arq 0.28 pins redis-py < 6; the main suite keeps the newest).

``ensure_arq_venv()`` builds ``.arq-venv/`` at the repo root once and reuses it while it still imports the right arq.
``ArqClient`` drives ``arq_side/arq_client_rpc.py`` in that venv; ``start_arq_worker`` runs the ``arq`` CLI there.
Neither subprocess can import runner: their working directory and ``sys.path`` hold only ``arq_side/``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

ARQ_REQUIREMENT = "arq==0.28.0"
REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_DIR = REPO_ROOT / ".arq-venv"
LOCK_FILE = REPO_ROOT / ".arq-venv.lock"
READY_MARKER = VENV_DIR / "runner-interop-ready"
ARQ_SIDE = Path(__file__).resolve().parent / "arq_side"


class ArqEnvError(RuntimeError):
    """The arq venv could not be built; the message says which step failed and why."""


def _venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def _venv_works() -> bool:
    if not READY_MARKER.is_file() or READY_MARKER.read_text().strip() != ARQ_REQUIREMENT:
        return False
    check = subprocess.run(
        [str(_venv_python()), "-c", "import arq, redis; assert arq.VERSION == '0.28.0', arq.VERSION"],
        capture_output=True,
        env=subprocess_env(),
        check=False,
    )
    return check.returncode == 0


def _run_step(args: list[str], what: str) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, env=subprocess_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ArqEnvError(f"Could not {what} for the interop tests: {exc}.") from exc
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise ArqEnvError(
            f"Could not {what} for the interop tests (exit {done.returncode}): {tail}. "
            f"The interop tests need PyPI to install {ARQ_REQUIREMENT} into {VENV_DIR}; "
            "fix the network or build that venv by hand, then rerun."
        )


def ensure_arq_venv() -> Path:
    """Return the arq venv's python, building the venv first when it is missing or broken.

    A file lock makes parallel test processes (pytest-xdist) build it once.

    Raises:
        ArqEnvError: the venv could not be created or arq could not be installed.
    """
    with open(LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _venv_works():
            shutil.rmtree(VENV_DIR, ignore_errors=True)
            _run_step([sys.executable, "-m", "venv", str(VENV_DIR)], f"create a venv at {VENV_DIR}")
            _run_step(
                [str(_venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q", ARQ_REQUIREMENT],
                f"pip install {ARQ_REQUIREMENT}",
            )
            READY_MARKER.write_text(ARQ_REQUIREMENT + "\n")
            if not _venv_works():
                raise ArqEnvError(f"{VENV_DIR} was built but does not import {ARQ_REQUIREMENT}; delete it and rerun.")
    return _venv_python()


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for arq-side processes: nothing that could put this project's venv on their path."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def end_process(proc: subprocess.Popen[Any]) -> None:
    """End a process this suite started, by its pid: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


class ArqClient:
    """The real arq client, one process for the whole session, driven by JSON lines.

    ``call`` may be awaited from any event loop (each test has its own); replies are matched by request id.
    """

    def __init__(self, python: Path, redis_url: str, stderr_path: Path) -> None:
        self._stderr: IO[bytes] = open(stderr_path, "wb")
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(
            [str(python), str(ARQ_SIDE / "arq_client_rpc.py"), redis_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=ARQ_SIDE,
            env=subprocess_env(),
        )
        self._ids = itertools.count(1)
        self._pending: dict[int, concurrent.futures.Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._ready: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        self._pending[0] = self._ready
        self._reader = threading.Thread(target=self._read, name="arq-client-reader", daemon=True)
        self._reader.start()
        try:
            self._ready.result(timeout=60)
        except Exception:
            self.close()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            reply = json.loads(line)
            with self._lock:
                future = self._pending.pop(reply["id"], None)
            if future is not None:
                future.set_result(reply)
        # the process is gone: fail whoever still waits, with its last words
        with self._lock:
            waiting, self._pending = list(self._pending.values()), {}
        for future in waiting:
            future.set_exception(RuntimeError(f"the arq client process exited; see {self.stderr_path}: {self.tail()}"))

    def tail(self) -> str:
        try:
            return " | ".join(self.stderr_path.read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            return ""

    async def call(self, op: str, *, wait: float = 60, **params: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        with self._lock:
            self._pending[request_id] = future
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps({"id": request_id, "op": op, **params}) + "\n").encode())
            self.proc.stdin.flush()
        reply = await asyncio.wait_for(asyncio.wrap_future(future), wait)
        reply.pop("id", None)
        return reply

    async def enqueue(self, function: str, *args: Any, **options: Any) -> str | None:
        kwargs = options.pop("kwargs", {})
        reply = await self.call("enqueue", function=function, args=list(args), kwargs=kwargs, **options)
        assert "error" not in reply, reply
        job_id: str | None = reply["job_id"]
        return job_id

    async def status(self, job_id: str, queue_name: str | None = None) -> str:
        reply = await self.call("status", job_id=job_id, queue_name=queue_name)
        assert "error" not in reply, reply
        status: str = reply["status"]
        return status

    async def info(self, job_id: str, queue_name: str | None = None) -> dict[str, Any] | None:
        reply = await self.call("info", job_id=job_id, queue_name=queue_name)
        assert "error" not in reply, reply
        info: dict[str, Any] | None = reply["info"]
        return info

    async def result(self, job_id: str, within_s: float = 20, queue_name: str | None = None) -> dict[str, Any]:
        """How arq's ``Job.result()`` ends: ``{"value": v}`` or ``{"error": {"__exc__": "mod.Class", "args": []}}``."""
        return await self.call(
            "result", job_id=job_id, timeout=within_s, poll_delay=0.02, wait=within_s + 10, queue_name=queue_name
        )

    async def queued_jobs(self, queue_name: str | None = None) -> list[dict[str, Any]]:
        reply = await self.call("queued_jobs", queue_name=queue_name)
        assert "error" not in reply, reply
        jobs: list[dict[str, Any]] = reply["jobs"]
        return jobs

    async def all_job_results(self) -> list[dict[str, Any]]:
        reply = await self.call("all_job_results")
        assert "error" not in reply, reply
        results: list[dict[str, Any]] = reply["results"]
        return results

    async def abort(self, job_id: str, within_s: float = 20) -> dict[str, Any]:
        return await self.call("abort", job_id=job_id, timeout=within_s, poll_delay=0.02, wait=within_s + 10)

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            end_process(self.proc)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def start_arq_worker(
    python: Path, redis_url: str, log_path: Path, queue_name: str = "arq:queue"
) -> subprocess.Popen[bytes]:
    """Start the real ``arq`` CLI in burst mode on ``arq_worker_settings.WorkerSettings``; the caller ends it by pid."""
    arq_cli = python.parent / "arq"
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [str(arq_cli), "arq_worker_settings.WorkerSettings", "--burst"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ARQ_SIDE,
            env=subprocess_env(INTEROP_REDIS_URL=redis_url, INTEROP_QUEUE_NAME=queue_name),
        )
