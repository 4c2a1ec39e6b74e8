"""Soak test: jobs keep flowing while worker processes are SIGKILLed and Redis is killed and restarted.

    python bench/soak.py                                  # 10 000 jobs, 3 workers, ~60 s of chaos
    python bench/soak.py --jobs 500 --duration 12 --json  # the short run tests/test_faults_soak.py makes
    python bench/soak.py --json > bench/figures/soak.json # the run docs/guarantees.md shows (make docs)

What happens:
  * a loopback valkey-server with AOF (appendfsync always) on its own port, and N ``runner start`` processes;
  * a producer enqueues the jobs spread over ``--duration`` seconds, with ids of its own, so an enqueue whose
    reply was lost can simply be sent again (the second attempt is refused: the job is already there);
  * every ``--kill-every`` seconds a random worker process gets SIGKILL and a new one is started;
  * Redis gets SIGKILL ``--redis-restarts`` times, spread over the duration, and comes back ``--redis-down``
    seconds later from its AOF;
  * then the chaos stops and the workers drain the queue, for at most ``--drain-timeout`` seconds.
Every job writes ``s <n>`` when it starts and ``f <n>`` when its function returns to a file of its process (a
file, not Redis, so runs are counted while Redis is down). The report compares that with the stored results:
  enqueued    jobs the producer got written
  completed   jobs with a successful stored result
  lost        enqueued but not completed (must be 0: the exit code is 1 otherwise)
  failed      jobs whose stored result is a failure (also exit code 1)
  duplicated  jobs whose function ran to its end more than once (a worker killed after the function returned
              but before the result was written: the price of never losing a job)
  reruns      extra starts, mostly of jobs that were running in a killed worker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
from runner.engine import JobSpec, RedisSettings, create_pool  # noqa: E402
from tests.support.servers import ValkeyServer  # noqa: E402  (the tests' own server helper)

TASKS = '''\
"""The soak's job: records its start and its end in a file of this process, then returns its number."""

import asyncio
import os

_fd = None


def _record(line):
    global _fd
    if _fd is None:
        path = os.path.join(os.environ["SOAK_RUNS_DIR"], f"runs-{os.getpid()}.txt")
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, line.encode())  # unbuffered: a SIGKILL cannot lose a line the kernel already has


async def soak_job(ctx, n, sleep_ms):
    _record(f"s {n}\\n")
    await asyncio.sleep(sleep_ms / 1000)
    _record(f"f {n}\\n")
    return n
'''

WORKER_TOML = """\
lease = "{lease}s"
max_jobs = {max_jobs}
poll_delay = "0.2s"
job_timeout = "60s"
keep_result = "2h"

[redis]
url = "{url}"
conn_retries = 2
conn_retry_delay = "0.5s"

[functions.soak_job]
path = "soaktasks:soak_job"
"""


@dataclass
class Options:
    jobs: int
    workers: int
    duration: float
    kill_every: float
    redis_restarts: int
    redis_down: float
    lease: float
    max_jobs: int
    job_ms: int
    drain_timeout: float
    seed: int
    keep: bool
    json: bool


@dataclass
class Chaos:
    """What the soak did to the system, for the report."""

    worker_kills: int = 0
    worker_starts: int = 0
    redis_restarts: int = 0
    enqueue_errors: int = 0
    events: list[str] = field(default_factory=list)


class Workers:
    """The ``runner start`` processes, each logging to a file of its own; ended by their pids."""

    def __init__(self, directory: Path, count: int, chaos: Chaos) -> None:
        self.directory = directory
        self.count = count
        self.chaos = chaos
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "SOAK_RUNS_DIR": str(directory), "PYTHONPATH": str(directory)}
        for name in list(self.env):
            if name.upper().startswith("RUNNER_") or name.upper() == "REDIS_URL":
                del self.env[name]

    def spawn(self) -> subprocess.Popen[bytes]:
        self.chaos.worker_starts += 1
        log = open(self.directory / f"worker-{self.chaos.worker_starts}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner.cli", "start", "worker.toml"],
            cwd=self.directory,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child has its own copy
        return proc

    def start(self) -> None:
        self.procs = [self.spawn() for _ in range(self.count)]

    def replace_dead(self) -> None:
        """Start a new process for each one that ended (killed, or could not reach Redis at startup)."""
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                self.procs[i] = self.spawn()

    def kill_one(self, rng: random.Random) -> int:
        i = rng.randrange(len(self.procs))
        victim = self.procs[i]
        if victim.poll() is None:
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            self.chaos.worker_kills += 1
        self.procs[i] = self.spawn()
        return victim.pid

    def stop(self) -> list[int | None]:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(30))
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                codes.append(None)
        return codes


def kill_redis(server: ValkeyServer) -> None:
    """SIGKILL, not a clean shutdown: with appendfsync always, nothing Redis acknowledged may be lost."""
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
    server.proc = None


async def produce(url: str, ids: list[str], options: Options, rng: random.Random, chaos: Chaos) -> int:
    """Enqueue every job, spread over the duration; resend a chunk until Redis has taken it."""
    pool = await create_pool(RedisSettings.from_dsn(url, socket_timeout=2, conn_retries=20, conn_retry_delay=0.25))
    enqueued = 0
    try:
        chunk = max(1, options.jobs // max(int(options.duration * 20), 1))
        started = time.monotonic()
        for first in range(0, len(ids), chunk):
            due = started + options.duration * first / len(ids)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            specs = [
                JobSpec("soak_job", (int(job_id.rsplit(":", 1)[1]), rng.randrange(options.job_ms + 1)), job_id=job_id)
                for job_id in ids[first : first + chunk]
            ]
            while True:
                try:
                    await pool.enqueue_many(specs)
                except (redis.RedisError, OSError):
                    chaos.enqueue_errors += 1
                    await asyncio.sleep(0.2)
                    continue
                # an id refused here was written by an attempt whose reply was lost: it is enqueued all the same
                enqueued += len(specs)
                break
    finally:
        await pool.aclose()
    return enqueued


def remaining(client: redis.Redis) -> int | None:
    try:
        return int(client.zcard("arq:queue"))
    except (redis.RedisError, OSError):
        return None


async def chaos_loop(
    server: ValkeyServer,
    workers: Workers,
    options: Options,
    rng: random.Random,
    chaos: Chaos,
    producing: asyncio.Task[int],
) -> None:
    started = time.monotonic()
    restarts = options.redis_restarts
    restart_at = [started + options.duration * (k + 1) / (restarts + 1) for k in range(restarts)]
    next_kill = started + options.kill_every
    while time.monotonic() - started < options.duration or not producing.done():
        now = time.monotonic()
        if restart_at and now >= restart_at[0]:
            restart_at.pop(0)
            kill_redis(server)
            chaos.events.append(f"{now - started:6.1f}s redis killed")
            await asyncio.sleep(options.redis_down)
            server.start()
            chaos.redis_restarts += 1
            chaos.events.append(f"{time.monotonic() - started:6.1f}s redis back")
        if now >= next_kill:
            pid = workers.kill_one(rng)
            chaos.events.append(f"{now - started:6.1f}s worker pid {pid} killed")
            next_kill = now + options.kill_every * rng.uniform(0.5, 1.5)
        workers.replace_dead()
        await asyncio.sleep(0.1)


def read_runs(directory: Path) -> tuple[Counter[int], Counter[int]]:
    starts: Counter[int] = Counter()
    ends: Counter[int] = Counter()
    for path in directory.glob("runs-*.txt"):
        for line in path.read_text().splitlines():
            kind, _, number = line.partition(" ")
            if not number.isdigit():
                continue  # a line cut short by a SIGKILL between two writes cannot happen, but be strict
            (starts if kind == "s" else ends)[int(number)] += 1
    return starts, ends


def results_of(client: redis.Redis, ids: list[str]) -> tuple[set[int], set[int]]:
    """(numbers with a successful result, numbers with a failed one)."""
    from runner.engine.job import deserialize_result

    ok: set[int] = set()
    failed: set[int] = set()
    for first in range(0, len(ids), 1000):
        chunk = ids[first : first + 1000]
        for job_id, raw in zip(chunk, client.mget([f"arq:result:{i}" for i in chunk]), strict=True):
            if raw is None:
                continue
            number = int(job_id.rsplit(":", 1)[1])
            (ok if deserialize_result(raw).success else failed).add(number)
    return ok, failed


def run(options: Options) -> dict[str, Any]:
    rng = random.Random(options.seed)
    directory = Path(tempfile.mkdtemp(prefix="runner-soak-"))
    server = ValkeyServer(appendonly=True).start()
    client = redis.Redis(port=server.port, socket_timeout=5)
    chaos = Chaos()
    (directory / "soaktasks.py").write_text(TASKS)
    (directory / "worker.toml").write_text(
        WORKER_TOML.format(url=server.url, lease=options.lease, max_jobs=options.max_jobs)
    )
    workers = Workers(directory, options.workers, chaos)
    run_id = f"{int(time.time())}{rng.randrange(1000):03d}"
    ids = [f"soak:{run_id}:{n}" for n in range(options.jobs)]
    began = time.monotonic()
    stuck = -1
    try:
        workers.start()

        async def chaos_phase() -> int:
            producing = asyncio.create_task(produce(server.url, ids, options, rng, chaos))
            await chaos_loop(server, workers, options, rng, chaos, producing)
            return await producing

        enqueued = asyncio.run(chaos_phase())
        chaos_s = time.monotonic() - began
        log(f"chaos over after {chaos_s:.1f}s: {enqueued} enqueued, draining")
        deadline = time.monotonic() + options.drain_timeout
        while time.monotonic() < deadline:
            workers.replace_dead()
            left = remaining(client)
            if left == 0:
                break
            time.sleep(0.25)
        stuck = remaining(client) or 0
        total_s = time.monotonic() - began
        codes = workers.stop()
        starts, ends = read_runs(directory)
        ok, failed = results_of(client, ids)
        wanted = set(range(options.jobs))
        lost = sorted(wanted - ok - failed)
        report: dict[str, Any] = {
            "enqueued": enqueued,
            "completed": len(ok),
            "lost": len(lost),
            "failed": len(failed),
            "duplicated": sum(1 for n in wanted if ends[n] > 1),
            "reruns": sum(max(starts[n] - 1, 0) for n in wanted),
            "never_started": sum(1 for n in lost if starts[n] == 0),
            "stuck_in_queue": stuck,
            "worker_kills": chaos.worker_kills,
            "worker_starts": chaos.worker_starts,
            "redis_restarts": chaos.redis_restarts,
            "enqueue_errors": chaos.enqueue_errors,
            "workers": options.workers,
            "chaos_s": round(chaos_s, 1),
            "total_s": round(total_s, 1),
            "worker_exit_codes": codes,
            "lost_sample": lost[:10],
            "dir": str(directory),
        }
        return report
    finally:
        for proc in workers.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        client.close()
        server.stop()
        if not options.keep:
            import shutil

            shutil.rmtree(server.dir, ignore_errors=True)
        for event in chaos.events:
            log(event)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs to enqueue (default 10000)")
    parser.add_argument("--workers", type=int, default=3, help="worker processes, 2-4 is the point (default 3)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of enqueueing and chaos (default 60)")
    parser.add_argument("--kill-every", type=float, default=3.0, help="mean seconds between worker kills (default 3)")
    parser.add_argument("--redis-restarts", type=int, default=2, help="times Redis is killed and started (default 2)")
    parser.add_argument("--redis-down", type=float, default=2.0, help="seconds Redis stays down (default 2)")
    parser.add_argument("--lease", type=float, default=2.0, help="the workers' lease in seconds (default 2)")
    parser.add_argument("--max-jobs", type=int, default=20, help="jobs each worker runs at once (default 20)")
    parser.add_argument("--job-ms", type=int, default=200, help="each job sleeps 0..this many ms (default 200)")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for the queue to empty")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (worker logs, run files)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON line")
    ns = parser.parse_args(argv)
    if ns.jobs < 1 or ns.workers < 1 or ns.duration <= 0 or ns.kill_every <= 0:
        parser.error("--jobs, --workers, --duration and --kill-every must be positive")
    return Options(**{name.replace("-", "_"): value for name, value in vars(ns).items()})


def summary(report: dict[str, Any]) -> str:
    """The two lines a run prints (also rendered into docs/guarantees.md from bench/figures/soak.json)."""
    return (
        f"soak: {report['enqueued']} enqueued, {report['completed']} completed, {report['lost']} lost, "
        f"{report['failed']} failed, {report['duplicated']} duplicated, {report['reruns']} reruns\n"
        f"      {report['workers']} workers, {report['worker_kills']} worker kills, "
        f"{report['redis_restarts']} Redis restarts, {report['enqueue_errors']} enqueue errors retried; "
        f"{report['chaos_s']}s of chaos, {report['total_s']}s in all"
    )


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    # SIGTERM unwinds like Ctrl-C, so the workers and the server this run started are ended by their pids
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    report = run(options)
    bad = report["lost"] > 0 or report["failed"] > 0
    if options.json:
        print(json.dumps(report))
    else:
        print(summary(report))
    if bad:
        print(f"soak FAILED: lost {report['lost_sample']}...; logs kept in {report['dir']}", file=sys.stderr)
    elif not options.keep:
        import shutil

        shutil.rmtree(report["dir"], ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
