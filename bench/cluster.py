"""Redis Cluster: drain throughput and server CPU per 1 000 jobs with a hot queue split over 1, 2 and 3 shards.

    .venv/bin/python bench/cluster.py [--quick | --smoke] [--json PATH]

A 3-master Valkey cluster on this machine (tests/support/cluster.py). Two ways to split, each over 1, 2 and 3
shards that lie on different masters (the cluster layout puts a queue's keys under one hash tag): by hand, where
a shard is a queue of its own, the jobs are spread evenly over them and one burst worker process drains each; and
with the setting, one queue with ``shards = N`` (RedisSettings.shards), its jobs spread by their ids, drained by
N burst worker processes that each claim from every shard (one lane per shard, max_jobs split over the lanes, so
the same 20 slots per shard as by hand). Throughput is jobs over the time
from the workers' start to the last one's exit; server CPU is the masters' used_cpu_user + used_cpu_sys over the
drain, per 1 000 jobs. The full run writes bench/figures/cluster.json, which `make docs` renders into
docs/cluster.md. On a shared 2-core machine the masters and workers compete for the same cores, so the figures
say what a shard costs, not how far shards scale: the load average is recorded with them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import BENCH, MAIN_PYTHON, REPO, package_version, publish
from redis.crc import key_slot

from runner import RedisSettings, create_pool
from runner.engine.client import JobSpec
from runner.engine.keys import CLUSTER_LAYOUT, shard_queues
from tests.support.cluster import ValkeyCluster, _client

FIGURES_JSON = BENCH / "figures" / "cluster.json"

WORKER = """
import asyncio, sys
from runner import RedisSettings, Worker, func
async def noop(ctx): return None
w = Worker([func(noop, name="noop")], redis_settings=RedisSettings.from_dsn(sys.argv[1], cluster=True),
           queue_name=sys.argv[2], burst=True, handle_signals=False, max_jobs=20, poll_delay=0.05)
asyncio.run(w.async_run())
"""

SHARDED_WORKER = """
import asyncio, sys
from runner import RedisSettings, Worker, func
async def noop(ctx): return None
shards = int(sys.argv[3])
settings = RedisSettings.from_dsn(sys.argv[1], cluster=True, shards={sys.argv[2]: shards})
w = Worker([func(noop, name="noop")], redis_settings=settings, queue_name=sys.argv[2], burst=True,
           handle_signals=False, max_jobs=20, poll_delay=0.05)
asyncio.run(w.async_run())
"""


def shard_names(cluster: ValkeyCluster, count: int) -> list[str]:
    """``count`` queue names whose slots lie on ``count`` different masters."""
    names: list[str] = []
    taken: set[int] = set()
    n = 0
    while len(names) < count:
        name = f"hot-{n}"
        port = cluster.master_of_slot(key_slot(CLUSTER_LAYOUT.queue(name).encode())).port
        if port not in taken:
            taken.add(port)
            names.append(name)
        n += 1
    return names


def sharded_queue(cluster: ValkeyCluster, count: int) -> str:
    """A queue name whose ``count`` shards lie on ``count`` different masters."""
    for n in range(1000):
        names = shard_queues(CLUSTER_LAYOUT, f"hot{n}", count)
        if len({cluster.master_of_slot(key_slot(CLUSTER_LAYOUT.queue(q).encode())).port for q in names}) == count:
            return f"hot{n}"
    raise RuntimeError("no queue name spreads its shards over the masters")


def cpu_s(cluster: ValkeyCluster) -> float:
    total = 0.0
    for master in cluster.masters:
        info = _client(master.port).info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


async def fill(url: str, queues: list[str], jobs: int, shards: dict[str, int] | None = None) -> None:
    pool = await create_pool(RedisSettings.from_dsn(url, cluster=True, shards=shards or {}))
    try:
        for start in range(0, jobs, 1000):
            specs = [JobSpec("noop", queue_name=queues[n % len(queues)]) for n in range(start, min(jobs, start + 1000))]
            await pool.enqueue_many(specs)
    finally:
        await pool.aclose()


def drain(cluster: ValkeyCluster, shards: int, jobs: int, setting: bool) -> dict[str, Any]:
    cluster.flush()
    if setting:
        queue = sharded_queue(cluster, shards)
        asyncio.run(fill(cluster.url, [queue], jobs, {queue: shards}))
        commands = [[SHARDED_WORKER, cluster.url, queue, str(shards)]] * shards
        queues = shard_queues(CLUSTER_LAYOUT, queue, shards)
    else:
        queues = shard_names(cluster, shards)
        asyncio.run(fill(cluster.url, queues, jobs))
        commands = [[WORKER, cluster.url, queue] for queue in queues]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    before_cpu, start = cpu_s(cluster), time.perf_counter()
    workers = [
        subprocess.Popen([str(MAIN_PYTHON), "-c", *command], env=env, stderr=subprocess.DEVNULL) for command in commands
    ]
    for worker in workers:
        worker.wait(600)
    elapsed, used = time.perf_counter() - start, cpu_s(cluster) - before_cpu
    left = sum(int(_client(m.port).dbsize()) for m in cluster.masters)
    waiting = sum(
        int(_client(cluster.master_of_slot(key_slot(q.encode())).port).zcard(CLUSTER_LAYOUT.queue(q))) for q in queues
    )
    return {
        "shards": shards,
        "split": "shards = N" if setting else "by hand",
        "jobs_per_s": jobs / elapsed,
        "server_cpu_ms_per_1000": used * 1000 / jobs * 1000,
        "keys_left": left,
        "jobs_left": waiting,
    }


def run(quick: bool, smoke: bool) -> dict[str, Any]:
    jobs = 60 if smoke else 1500 if quick else 6000
    load_before = os.getloadavg()[0]
    cluster = ValkeyCluster(masters=3).start()
    try:
        version = str(_client(cluster.masters[0].port).info("server")["valkey_version"])
        # by hand and with the setting, side by side for each count, so the ratio comes from one stretch of load
        rows = [drain(cluster, shards, jobs, setting) for shards in (1, 2, 3) for setting in (False, True)]
    finally:
        cluster.stop()
    return {
        "runner": package_version(MAIN_PYTHON, "runner-jobs"),
        "server": f"valkey {version}, 3 masters",
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "jobs": jobs,
        "quick": quick or smoke,
        "load_before": round(load_before, 1),
        "load_after": round(os.getloadavg()[0], 1),
        "rows": rows,
    }


def report(f: dict[str, Any]) -> str:
    lines = [f"{f['jobs']:,} no-op jobs, {f['server']}, load average {f['load_before']} -> {f['load_after']}"]
    for row in f["rows"]:
        lines.append(
            f"  {row['shards']} shard(s) {row['split']}: {row['jobs_per_s']:,.0f} jobs/s, "
            f"server CPU {row['server_cpu_ms_per_1000']:.0f} ms per 1 000 jobs, keys left {row['keys_left']}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs; writes no figures file")
    parser.add_argument("--smoke", action="store_true", help="tiny runs for the test suite")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = run(args.quick, args.smoke)
    publish(figures, report(figures), args.json, None if args.quick or args.smoke else FIGURES_JSON)
    return 0


if __name__ == "__main__":
    sys.exit(main())
