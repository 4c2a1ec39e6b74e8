"""The soak's chaos: worker processes SIGKILLed and frozen, Redis killed and restarted, connection-kill storms and
network stalls, on a schedule that keeps them apart so each one's effect can be measured.

The workers reach Redis through a ``StallProxy`` (tests/support/proxy.py) the soak controls; the producer and the
soak's own checks talk to Redis directly. Times are ``time.time()``, the clock the jobs record their runs with.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from soak_runs import Chaos, Window

# after Redis is back or the network flows again, a worker may still be in its outage backoff (at most 2 s): a
# worker killed meanwhile would wait longer for a takeover for a reason that is not the kill's
_AFTER_OUTAGE_S = 2.5
_STORM_KILL_EVERY_S = 0.1
_READY = re.compile(rb"worker \w+ on ")


@dataclass
class Plan:
    """How hard and how often: the soak's options that shape the chaos."""

    duration: float
    kill_every: float
    redis_restarts: int
    redis_down: float
    storms: int
    storm_s: float
    stalls: int
    stall_s: float
    freezes: int
    freeze_s: float
    lease: float


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
        self.thaw_at: dict[int, float] = {}  # frozen pid: when it gets SIGCONT
        self.logs: dict[int, Path] = {}  # pid: its log file
        self.ready: set[int] = set()  # pids whose worker has said it is taking jobs

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
        self.logs[proc.pid] = self.directory / f"worker-{self.chaos.worker_starts}.log"
        return proc

    def all_ready(self) -> bool:
        """Every worker process is up and taking jobs (its log has the worker's "worker <id> on <queue>" line).

        A replacement takes a second or more to start, longer on a busy machine: killing or freezing another worker
        meanwhile would leave fewer workers than "one down at a time" promises (none at all, with three), and the
        wait for the victim's jobs would measure that start-up, not the lease.
        """
        for proc in self.procs:
            if proc.pid in self.ready:
                continue
            if proc.poll() is not None or _READY.search(self.logs[proc.pid].read_bytes()) is None:
                return False
            self.ready.add(proc.pid)
        return True

    def start(self) -> None:
        self.procs = [self.spawn() for _ in range(self.count)]

    def replace_dead(self) -> None:
        """Start a new process for each one that ended (killed, or could not reach Redis at startup)."""
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                self.procs[i] = self.spawn()

    def _pick(self, rng: random.Random) -> int | None:
        """A live worker that is not frozen, or None."""
        choices = [i for i, proc in enumerate(self.procs) if proc.poll() is None and proc.pid not in self.thaw_at]
        return rng.choice(choices) if choices else None

    def kill_one(self, rng: random.Random) -> int | None:
        i = self._pick(rng)
        if i is None:
            return None
        victim = self.procs[i]
        at = time.time()
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        self.chaos.worker_kills += 1
        self.chaos.killed[victim.pid] = at
        self.chaos.deaths.append((victim.pid, at))
        self.procs[i] = self.spawn()
        return victim.pid

    def freeze_one(self, rng: random.Random, seconds: float) -> int | None:
        """SIGSTOP a worker; ``thaw_due()`` sends it SIGCONT ``seconds`` later."""
        i = self._pick(rng)
        if i is None:
            return None
        pid = self.procs[i].pid
        at = time.time()
        os.kill(pid, signal.SIGSTOP)
        self.chaos.freezes += 1
        self.chaos.deaths.append((pid, at))
        self.chaos.frozen[pid].append(Window(at, at + seconds))
        self.thaw_at[pid] = at + seconds
        return pid

    def thaw_due(self, *, everyone: bool = False) -> None:
        now = time.time()
        for pid, at in list(self.thaw_at.items()):
            if everyone or now >= at:
                del self.thaw_at[pid]
                self.chaos.frozen[pid][-1].end = now
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    def stop(self) -> list[int | None]:
        self.thaw_due(everyone=True)
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

    def end(self) -> None:
        """What is left, SIGKILLed by pid (after an error or Ctrl-C)."""
        self.thaw_due(everyone=True)
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def kill_redis(server: Any) -> None:
    """SIGKILL, not a clean shutdown: with appendfsync always, nothing Redis acknowledged may be lost."""
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
    server.proc = None


def schedule(plan: Plan, started: float) -> list[tuple[float, str]]:
    """When each Redis restart, storm, stall and freeze is due: spread evenly over the duration, kinds taking turns."""
    kinds = {"redis": plan.redis_restarts, "storm": plan.storms, "stall": plan.stalls, "freeze": plan.freezes}
    order: list[str] = []
    while any(kinds.values()):
        for kind in kinds:
            if kinds[kind]:
                kinds[kind] -= 1
                order.append(kind)
    return [(started + plan.duration * (k + 1) / (len(order) + 1), kind) for k, kind in enumerate(order)]


class ChaosLoop:
    """Runs the plan: random worker kills all along, and the scheduled faults one at a time.

    A worker is never killed or frozen while another is frozen or still starting (one worker down at a time, the
    others there to take its jobs over). A network fault (Redis down, a storm, a stall) waits until a
    lease and a second have passed since the last worker was killed or frozen, and kills pause from the moment it
    is due until the workers are surely talking to Redis again, so that the wait for a dead worker's jobs measures
    the lease and nothing else.
    """

    def __init__(self, plan: Plan, server: Any, proxy: Any, workers: Workers, rng: random.Random, chaos: Chaos):
        self.plan = plan
        self.server = server
        self.proxy = proxy
        self.workers = workers
        self.rng = rng
        self.chaos = chaos
        self.started = chaos.started = time.time()
        self.last_death = 0.0

    def log(self, what: str) -> None:
        self.chaos.events.append(f"{time.time() - self.started:6.1f}s {what}")

    async def run(self, producing: asyncio.Task[int]) -> None:
        plan = self.plan
        due = schedule(plan, self.started)
        next_kill = self.started + plan.kill_every
        while time.time() - self.started < plan.duration or not producing.done() or due:
            now = time.time()
            network_due = bool(due) and now >= due[0][0] and due[0][1] != "freeze"
            if due and now >= due[0][0]:
                if due[0][1] == "freeze":
                    if self.workers.all_ready():
                        due.pop(0)
                        self.freeze()
                elif now >= self.last_death + plan.lease + 1:
                    await self.network_fault(due.pop(0)[1])
                    next_kill = max(next_kill, time.time() + _AFTER_OUTAGE_S)
            # one worker down at a time: the others are there to take its jobs over
            if now >= next_kill and not network_due and not self.workers.thaw_at and self.workers.all_ready():
                pid = self.workers.kill_one(self.rng)
                if pid is not None:
                    self.last_death = time.time()
                    self.log(f"worker pid {pid} killed")
                next_kill = now + plan.kill_every * self.rng.uniform(0.5, 1.5)
            self.workers.thaw_due()
            self.workers.replace_dead()
            await asyncio.sleep(0.05)
        self.workers.thaw_due(everyone=True)

    def freeze(self) -> None:
        pid = self.workers.freeze_one(self.rng, self.plan.freeze_s)
        if pid is not None:
            self.last_death = time.time()
            self.log(f"worker pid {pid} frozen for {self.plan.freeze_s:g}s")

    async def network_fault(self, kind: str) -> None:
        began = time.time()
        if kind == "redis":
            kill_redis(self.server)
            self.log("redis killed")
            await asyncio.sleep(self.plan.redis_down)
            self.server.start()
            self.chaos.redis_restarts += 1
            self.log("redis back")
        elif kind == "stall":
            self.proxy.stall(new=True)  # every connection, open or new, forwards nothing either way
            self.log("network stalled")
            await asyncio.sleep(self.plan.stall_s)
            self.proxy.resume()
            self.chaos.stalls += 1
            self.log("network flows again")
        else:
            await self.storm()
            return  # a storm is ridden over in a moment: no outage to excuse anything with
        self.chaos.outages.append(Window(began, time.time()))

    async def storm(self) -> None:
        """CLIENT KILL of every normal connection (the workers', the producer's), again and again."""
        killer = redis.Redis(port=self.server.port, socket_timeout=2)
        killed = 0
        try:
            until = time.time() + self.plan.storm_s
            while time.time() < until:
                try:
                    killed += int(killer.client_kill_filter(_type="normal", skipme=True))
                except (redis.RedisError, OSError):
                    pass
                await asyncio.sleep(_STORM_KILL_EVERY_S)
        finally:
            killer.close()
        self.chaos.storms += 1
        self.chaos.connections_killed += killed
        self.log(f"connection-kill storm: {killed} connections killed")
