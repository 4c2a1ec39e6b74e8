"""What the soak's jobs recorded of their runs, held against what the chaos did: the figures of a soak run.

Each job appends to a file of its process (``runs-<pid>.txt``) one line when it starts and one when it returns or
is cancelled: ``s|f|c <number> <try> <unix time>``. A file, not Redis, so runs are counted while Redis is down and
while a worker's connection is stalled. From those lines and the chaos log (``Chaos``: when each worker was killed
or frozen, when Redis was down or the network stalled) this module works out:

  duplicated            jobs whose function ran to its end more than once
  undocumented          duplicated jobs with no documented cause: none of their finished runs was on a worker
                        killed or frozen before its outcome could be written, or just before Redis went away
  concurrent            jobs run by two workers at the same time (a frozen worker's frozen stretch does not count:
                        nothing of the job runs there)
  waits                 for each job running in a worker when it was SIGKILLed or SIGSTOPped, the time until
                        another worker started it
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Window:
    """A stretch of time something was wrong: a worker frozen, Redis down, the network stalled."""

    start: float
    end: float

    def meets(self, start: float, end: float) -> bool:
        return self.start < end and start < self.end


@dataclass
class Chaos:
    """What the soak did to the system, with times (``time.time()``, the clock the jobs record with)."""

    worker_kills: int = 0
    worker_starts: int = 0
    redis_restarts: int = 0
    storms: int = 0
    connections_killed: int = 0
    stalls: int = 0
    freezes: int = 0
    enqueue_errors: int = 0
    started: float = field(default_factory=time.time)
    killed: dict[int, float] = field(default_factory=dict)  # pid: when it got SIGKILL
    frozen: dict[int, list[Window]] = field(default_factory=lambda: defaultdict(list))  # pid: SIGSTOP..SIGCONT
    deaths: list[tuple[int, float]] = field(default_factory=list)  # (pid, when) of every SIGKILL and SIGSTOP
    outages: list[Window] = field(default_factory=list)  # Redis down, the network stalled
    events: list[str] = field(default_factory=list)


@dataclass
class Run:
    """One start of a job's function in one process."""

    pid: int
    job_try: int
    start: float
    end: float | None = None
    how: str = "open"  # "finished", "cancelled", "killed" (its process got SIGKILL), "open"


def read_runs(directory: Path, chaos: Chaos) -> dict[int, list[Run]]:
    """Every run of every job number, from the processes' files; a run its process's SIGKILL cut ends there."""
    runs: dict[int, list[Run]] = defaultdict(list)
    for path in sorted(directory.glob("runs-*.txt")):
        pid = int(path.stem.split("-", 1)[1])
        open_runs: dict[int, Run] = {}
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 4 or not parts[1].isdigit():
                continue  # unbuffered single writes: a line cut short cannot happen, but be strict
            kind, number, job_try, at = parts[0], int(parts[1]), int(parts[2]), float(parts[3])
            if kind == "s":
                open_runs[number] = Run(pid, job_try, at)
                runs[number].append(open_runs[number])
            elif number in open_runs:
                run = open_runs.pop(number)
                run.end, run.how = at, "finished" if kind == "f" else "cancelled"
        for run in open_runs.values():
            if pid in chaos.killed:
                run.end, run.how = chaos.killed[pid], "killed"
    return runs


def _active(run: Run, chaos: Chaos, horizon: float) -> list[tuple[float, float]]:
    """The stretches in which ``run`` could execute: start to end, less the times its process was frozen."""
    pieces = [(run.start, run.end if run.end is not None else horizon)]
    for window in chaos.frozen.get(run.pid, []):
        cut: list[tuple[float, float]] = []
        for start, end in pieces:
            if not window.meets(start, end):
                cut.append((start, end))
                continue
            if start < window.start:
                cut.append((start, window.start))
            if window.end < end:
                cut.append((window.end, end))
        pieces = cut
    return pieces


def concurrent_jobs(runs: dict[int, list[Run]], chaos: Chaos, horizon: float) -> list[int]:
    """Job numbers that two processes ran at the same moment."""
    found = []
    for number, job_runs in runs.items():
        if len({run.pid for run in job_runs}) < 2:
            continue
        stretches = [(run.pid, piece) for run in job_runs for piece in _active(run, chaos, horizon)]
        if any(
            a_pid != b_pid and a[0] < b[1] and b[0] < a[1]
            for i, (a_pid, a) in enumerate(stretches)
            for b_pid, b in stretches[i + 1 :]
        ):
            found.append(number)
    return sorted(found)


def _documented(run: Run, chaos: Chaos, lease_s: float) -> bool:
    """A finished run whose outcome may never have been written, for a reason guarantees.md gives."""
    assert run.end is not None
    after = (run.end, run.end + lease_s + 1)
    killed = chaos.killed.get(run.pid)
    if killed is not None and after[0] <= killed <= after[1]:
        return True  # killed between the return and the write of its outcome
    if any(window.meets(run.start, after[1]) for window in chaos.frozen.get(run.pid, [])):
        return True  # frozen past its lease: the job was taken over, its late outcome is dropped
    return any(window.meets(*after) for window in chaos.outages)  # Redis away for what was left of the lease


def duplicates(runs: dict[int, list[Run]], chaos: Chaos, lease_s: float) -> tuple[list[int], list[int]]:
    """(jobs whose function ran to its end more than once, the ones among them with no documented cause)."""
    duplicated, undocumented = [], []
    for number, job_runs in runs.items():
        finished = [run for run in job_runs if run.how == "finished"]
        if len(finished) < 2:
            continue
        duplicated.append(number)
        if not any(_documented(run, chaos, lease_s) for run in finished):
            undocumented.append(number)
    return sorted(duplicated), sorted(undocumented)


def takeover_waits(runs: dict[int, list[Run]], chaos: Chaos) -> list[dict[str, Any]]:
    """For each worker killed or frozen: how many jobs it was running, the longest time until another worker started
    one of them, and how many no other worker started (a frozen worker that woke in time to finish its job)."""
    found = []
    for pid, at in chaos.deaths:
        waits: list[float] = []
        not_taken = 0
        for job_runs in runs.values():
            here = [run for run in job_runs if run.pid == pid and run.start < at and (run.end is None or run.end >= at)]
            if not here:
                continue
            later = [run.start for run in job_runs if run.pid != pid and run.start >= at]
            if later:
                waits.append(min(later) - at)
            else:
                not_taken += 1
        found.append(
            {
                "pid": pid,
                "how": "killed" if chaos.killed.get(pid) == at else "frozen",
                "at": at,
                "jobs": len(waits) + not_taken,
                "longest_wait_s": round(max(waits), 2) if waits else None,
                "not_taken_over": not_taken,
            }
        )
    return found
