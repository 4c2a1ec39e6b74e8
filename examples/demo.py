"""One-command demo: enqueue a few jobs, run the example worker, print each result as it arrives.

    python examples/demo.py                 # enqueue, start `runner start examples/worker.toml`, print, stop it
    python examples/demo.py --no-worker     # a worker is already running (e.g. in another terminal)
    python examples/demo.py --enqueue-only  # just enqueue; `runner start examples/worker.toml --burst` runs them

The jobs are enqueued before any worker runs: they wait in the embedded server's data directory
(examples/.runner) until a worker starts, even if the server is stopped in between.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from runner import Job, RedisSettings, create_pool

HERE = Path(__file__).resolve().parent
WORKER_TOML = HERE / "worker.toml"
SHOWN_TOML = os.path.relpath(WORKER_TOML)  # as the user would type it from here
# the same directory as url = "embedded://.runner" in worker.toml, which is relative to that file
REDIS_URL = os.environ.get("REDIS_URL", f"embedded://{HERE / '.runner'}")

JOBS: list[tuple[str, tuple[Any, ...]]] = [
    ("send_email", ("ada@example.com", "Welcome aboard")),
    ("send_email", ("grace@example.com", "Your weekly digest")),
    ("fetch_exchange_rate", ("EUR",)),
    ("build_report", (500,)),
    ("build_report", (100_000,)),  # takes ~5s, over build_report's 2s timeout: fails
]


def runner_command() -> list[str]:
    """The installed ``runner`` script of this interpreter's environment, else the CLI through this interpreter."""
    script = Path(sys.executable).with_name("runner")
    if script.exists():
        return [str(script)]
    found = shutil.which("runner")
    return [found] if found else [sys.executable, "-c", "from runner.cli import main; main()"]


def start_worker() -> subprocess.Popen[bytes]:
    command = [*runner_command(), "start", str(WORKER_TOML)]
    print(f"Starting the worker: runner start {SHOWN_TOML}", flush=True)
    return subprocess.Popen(command)


def stop_worker(worker: subprocess.Popen[bytes]) -> int:
    if worker.poll() is None:
        worker.send_signal(signal.SIGINT)  # a graceful stop, like Ctrl-C
        try:
            return worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    return worker.wait()


async def wait_for(job: Job, call: str, worker: subprocess.Popen[bytes] | None) -> None:
    waiter = asyncio.ensure_future(job.result(timeout=60, poll_delay=0.1))
    while not waiter.done():
        if worker is not None and worker.poll() is not None:
            waiter.cancel()
            raise SystemExit(f"The worker exited with code {worker.returncode} before {call} finished.")
        await asyncio.wait({waiter}, timeout=0.2)
    try:
        result = waiter.result()
    except Exception as exc:  # the job's own exception, re-raised by result()
        reason = str(exc) or "it ran longer than its function's timeout"
        print(f"  {call:<56} ✗ {type(exc).__name__}: {reason}", flush=True)
    else:
        print(f"  {call:<56} ✓ {result}", flush=True)


async def main(run_worker: bool, enqueue_only: bool) -> int:
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    worker = None
    try:
        jobs = []
        for name, args in JOBS:
            job = await pool.enqueue_job(name, *args)
            assert job is not None  # only a duplicate _job_id is refused, and these have none
            jobs.append((job, f"{name}({', '.join(map(repr, args))})"))
        print(f"Enqueued {len(jobs)} jobs into {REDIS_URL}; no worker is needed for that.", flush=True)
        if enqueue_only:
            print(f"They wait there until a worker runs them: runner start {SHOWN_TOML} --burst")
            return 0
        if run_worker:
            worker = start_worker()
        # printed in the order the jobs finish: the retried job and the one that times out come last
        await asyncio.gather(*(wait_for(job, call, worker) for job, call in jobs))
    finally:
        code = stop_worker(worker) if worker is not None else 0
        await pool.aclose()
    print(f"Done. Results are kept for an hour; `runner jobs {SHOWN_TOML} list` shows them.")
    return 0 if code in (0, -signal.SIGINT, 130) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--no-worker", action="store_true", help="do not start a worker; one is already running")
    group.add_argument("--enqueue-only", action="store_true", help="enqueue the jobs and exit")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(run_worker=not args.no_worker, enqueue_only=args.enqueue_only)))
