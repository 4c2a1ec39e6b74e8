"""What every bench driver shares; standard library only, because drivers run in other venvs too.

A driver is started as ``python <driver>.py '<json spec>'``. It sets itself up (imports, connection, worker
object), prints ``READY``, waits for a line on stdin (so every process of a measurement starts together and
no import time is measured), does its one operation, prints one JSON line and exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

# the event loops runner's driver runs on (its spec's "loop"); the other systems' drivers run on asyncio's own
LOOPS = ("asyncio", "uvloop")

# filled by the `pickup` job function: seconds from just before the enqueue call to the job starting
PICKUPS: list[float] = []


def read_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    return spec


def ready_and_wait() -> float:
    """Tell the harness this process is set up, block until it says go, and return the start time."""
    print("READY", flush=True)
    sys.stdin.readline()
    return time.time()


def finish(result: dict[str, Any]) -> None:
    """Print the result line and leave at once: tearing a worker down politely is not what is measured."""
    result["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result), flush=True)
    os._exit(0)


class Tally:
    """Counts finished jobs and remembers when the last one finished.

    Where the worker keeps a count of its own (runner, arq), ``counter`` reads it and ``run_worker`` samples it
    every few milliseconds, so the bench adds no hook to the job's path: an ``after_job_end`` hook would make a
    runner worker wait for each outcome's write before freeing the job's slot. saq keeps no count, so its
    ``after_process`` hook calls ``hook``.
    """

    def __init__(self, counter: Callable[[], int] | None = None) -> None:
        self.done = 0
        self.last = 0.0
        self.counter = counter

    async def hook(self, ctx: Any) -> None:
        self.done += 1
        self.last = time.time()

    def sample(self) -> None:
        if self.counter is not None:
            done = self.counter()
            if done != self.done:
                self.done = done
                self.last = time.time()


async def run_worker(
    spec: dict[str, Any], tally: Tally, start: Callable[[], Awaitable[Any]], t0: float
) -> dict[str, Any]:
    """Run ``start()`` until it returns (burst ended), the cap passes, or enough pick-ups were seen."""
    cap = float(spec.get("cap_s", 60))
    want_pickups = int(spec.get("pickups", 0))
    task = asyncio.ensure_future(start())
    deadline = t0 + cap
    while not task.done() and time.time() < deadline:
        if want_pickups and len(PICKUPS) >= want_pickups:
            break
        await asyncio.wait({task}, timeout=0.005)
        tally.sample()
    tally.sample()
    if task.done() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    capped = not task.done() and not (want_pickups and len(PICKUPS) >= want_pickups)
    return {"done": tally.done, "t0": t0, "t_last": tally.last or time.time(), "capped": capped, "pickups": PICKUPS[:]}


async def enqueue_loop(spec: dict[str, Any], one: Callable[[], Awaitable[Any]], t0: float) -> dict[str, Any]:
    """Single and concurrent enqueue: ``producers`` tasks call ``one()`` until ``n`` jobs or the cap."""
    n = int(spec["n"])
    producers = int(spec.get("producers", 1))
    deadline = t0 + float(spec.get("cap_s", 60))
    count = 0

    async def producer() -> None:
        nonlocal count
        while count < n and time.time() < deadline:
            count += 1
            await one()

    await asyncio.gather(*(producer() for _ in range(producers)))
    return {"n": count, "elapsed": time.time() - t0}


async def gather_in_windows(n: int, window: int, one: Callable[[], Awaitable[Any]]) -> None:
    """What a user of a queue without a bulk call does: many enqueues in flight, ``window`` at a time."""
    for start in range(0, n, window):
        await asyncio.gather(*(one() for _ in range(min(window, n - start))))


async def paced(n: int, interval_s: float, delay_s: float, one: Callable[[float], Awaitable[Any]]) -> None:
    """Call ``one(t)`` ``n`` times, ``interval_s`` apart, with ``t`` the wall time just before the call."""
    await asyncio.sleep(delay_s)
    base = time.monotonic()
    for i in range(n):
        await one(time.time())
        await asyncio.sleep(max(base + (i + 1) * interval_s - time.monotonic(), 0))


async def client_op(
    spec: dict[str, Any],
    enqueue: Callable[..., Awaitable[Any]],
    wait_result: Callable[[Any], Awaitable[float]],
    bulk: Callable[[int], Awaitable[None]] | None = None,
) -> dict[str, Any] | None:
    """The producer-side operations, the same for every system but for how it enqueues and awaits a result.

    ``enqueue(function, **kwargs)`` returns a job handle; ``wait_result(job)`` returns the job's return value;
    ``bulk(n)`` is the system's bulk enqueue, if it has one (without one: many enqueues in flight at once).
    Returns None for an operation that is not the producer's.
    """
    op = spec["op"]
    if op == "enqueue":
        if spec["mode"] == "bulk":
            t0 = ready_and_wait()
            if bulk is not None:
                await bulk(spec["n"])
            else:
                await gather_in_windows(spec["n"], int(spec.get("window", 100)), lambda: enqueue("noop"))
            return {"n": spec["n"], "elapsed": time.time() - t0}
        t0 = ready_and_wait()
        return await enqueue_loop(spec, lambda: enqueue("noop"), t0)
    if op == "paced":
        ready_and_wait()
        await paced(spec["n"], spec["interval_s"], spec.get("delay_s", 0.3), lambda t: enqueue("pickup", t=t))
        return {}
    if op == "result":

        async def one() -> float:
            job = await enqueue("sleep10t")
            assert job is not None
            return await wait_result(job)

        ready_and_wait()
        return {"latencies": await result_latencies(spec["n"], one)}
    return None


async def result_latencies(n: int, one: Callable[[], Awaitable[float]]) -> list[float]:
    """``one()`` enqueues a job that returns its finish time and waits for the result; latency = now - that."""
    out = []
    for _ in range(n):
        finished = await one()
        out.append(time.time() - finished)
    return out


async def job_noop(ctx: Any, **kwargs: Any) -> None:
    return None


async def job_sleep10(ctx: Any, **kwargs: Any) -> None:
    await asyncio.sleep(0.01)


async def job_sleep10t(ctx: Any, **kwargs: Any) -> float:
    await asyncio.sleep(0.01)
    return time.time()


async def job_pickup(ctx: Any, t: float = 0.0, **kwargs: Any) -> None:
    PICKUPS.append(time.time() - t)


# one name per job function, the same in every driver
JOB_FUNCTIONS: dict[str, Callable[..., Awaitable[Any]]] = {
    "noop": job_noop,
    "sleep10": job_sleep10,
    "sleep10t": job_sleep10t,
    "pickup": job_pickup,
}
