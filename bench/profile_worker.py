"""Profile runner's worker (cProfile) while it drains queued no-op jobs, or its client while it enqueues.

    .venv/bin/python bench/profile_worker.py [--jobs 20000] [--max-jobs 10] [--enqueue] [--top 30]

The server is a loopback valkey-server this script starts; the profile covers only the drain (or the enqueues).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time

from harness import Server

from runner import RedisSettings, Worker, create_pool, func


async def noop(ctx: object) -> None:
    return None


async def drain(url: str, max_jobs: int, profile: cProfile.Profile) -> float:
    pool = await create_pool(RedisSettings.from_dsn(url))
    worker = Worker([func(noop, name="noop")], redis_pool=pool, burst=True, handle_signals=False, max_jobs=max_jobs)
    t0 = time.perf_counter()
    profile.enable()
    await worker.async_run()
    profile.disable()
    elapsed = time.perf_counter() - t0
    await pool.aclose()
    return worker.jobs_complete / elapsed


async def enqueue(url: str, n: int, profile: cProfile.Profile) -> float:
    pool = await create_pool(RedisSettings.from_dsn(url))
    t0 = time.perf_counter()
    profile.enable()
    for _ in range(n):
        await pool.enqueue_job("noop")
    profile.disable()
    elapsed = time.perf_counter() - t0
    await pool.aclose()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--max-jobs", type=int, default=10)
    parser.add_argument("--enqueue", action="store_true", help="profile enqueue_job instead of the worker")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    args = parser.parse_args()
    server = Server()
    profile = cProfile.Profile()
    try:
        if args.enqueue:
            rate = asyncio.run(enqueue(server.url, args.jobs, profile))
        else:
            server.fill_arq(args.jobs)
            rate = asyncio.run(drain(server.url, args.max_jobs, profile))
    finally:
        server.stop()
    print(f"{rate:,.0f} jobs/s under the profiler")
    pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
