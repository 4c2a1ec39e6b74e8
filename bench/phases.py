"""One function per kind of measurement, shared by engine.py and compare.py. Each returns plain numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import Driver, Server, measure, one_shot, percentile, throughput


@dataclass
class Contender:
    """One system under one configuration: which driver, in which venv, with which worker options."""

    key: str
    label: str
    python: Path
    driver: str  # runner | arq | saq | bare
    options: dict[str, Any] = field(default_factory=dict)
    saq_template: dict[str, str] | None = None
    # the event loop the driver runs on ("asyncio" or "uvloop"); only runner's driver reads it, None leaves it be
    loop: str | None = None

    def fill(self, server: Server, n: int, function: str = "noop") -> None:
        if self.driver == "saq":
            if self.saq_template is None:
                self.saq_template = one_shot(self.python, "saq", {"op": "template", "url": server.url})
            server.fill_saq(n, self.saq_template, function)
        else:
            server.fill_arq(n, function)

    def worker(self, server: Server, **spec: Any) -> Driver:
        options = {**self.options, **spec.pop("options", {})}
        spec = {"op": "work", "url": server.url, "options": options, **self._loop(), **spec}
        return Driver(self.python, self.driver, spec)

    def client(self, server: Server, **spec: Any) -> Driver:
        return Driver(self.python, self.driver, {"url": server.url, **self._loop(), **spec})

    def _loop(self) -> dict[str, str]:
        return {} if self.loop is None else {"loop": self.loop}


def drain(
    server: Server,
    who: Contender,
    n: int,
    *,
    cap_s: float,
    function: str = "noop",
    processes: int = 1,
    monitor: bool = False,
    limit: int | None = None,
    queued: int | None = None,
    options: dict[str, Any] | None = None,
    fill: bool = True,
) -> dict[str, Any]:
    """Queue ``queued`` (default ``n``) jobs, then time worker processes through ``n`` of them (or the cap).

    With ``fill=False`` the jobs already queued are used as they are (several drains share one big fill).
    Returns jobs/s, jobs done, whether the cap cut it short, peak RSS of the first worker, the drain's wall time
    (the first process told to go to the last job's end), the server's CPU seconds over it and per 1 000 jobs in
    ms, the event loop the workers ran on where their driver says, and (with ``monitor``) commands per job: sent
    by clients, and in total on the server.
    """
    if fill:
        server.flush()
        who.fill(server, queued or n, function)
    workers = [who.worker(server, cap_s=cap_s, limit=limit, options=options or {}) for _ in range(processes)]
    m = measure(server, workers, monitor=monitor)
    rate, done = throughput(m.results)
    out: dict[str, Any] = {
        "jobs_per_s": rate,
        "done": done,
        "capped": done < (limit or n),
        "rss_mb": m.results[0]["rss_kb"] / 1024,
        "cpu_ms_per_1000": m.server_cpu_s * 1000 / done * 1000 if done else float("nan"),
        "elapsed_s": max(r["t_last"] for r in m.results) - min(r["t0"] for r in m.results),
        "server_cpu_s": m.server_cpu_s,
    }
    if "loop" in m.results[0]:
        out["loop"] = m.results[0]["loop"]
    if monitor and done:
        out["client_cmds_per_job"] = m.client_cmds / done
        out["server_cmds_per_job"] = sum(m.calls.values()) / done
        out["calls"] = m.calls
    return out


def enqueue(server: Server, who: Contender, mode: str, n: int, *, cap_s: float, producers: int = 1) -> float:
    """Jobs enqueued per second: ``single`` (one after another), ``concurrent`` (``producers`` tasks) or ``bulk``."""
    return float(enqueue_cost(server, who, mode, n, cap_s=cap_s, producers=producers)["jobs_per_s"])


def enqueue_cost(
    server: Server, who: Contender, mode: str, n: int, *, cap_s: float, producers: int = 1
) -> dict[str, float]:
    """``enqueue``'s jobs/s, and what the enqueues cost the server: its CPU ms per 1 000 jobs enqueued."""
    server.flush()
    driver = who.client(server, op="enqueue", mode=mode, n=n, cap_s=cap_s, producers=producers)
    m = measure(server, [driver])
    r = m.results[0]
    return {
        "jobs_per_s": r["n"] / r["elapsed"],
        "cpu_ms_per_1000": m.server_cpu_s * 1000 / r["n"] * 1000 if r["n"] else float("nan"),
    }


def pickup(server: Server, who: Contender, n: int, interval_s: float) -> dict[str, float]:
    """An idle worker; a producer enqueues ``n`` jobs ``interval_s`` apart. Seconds from enqueue to start."""
    server.flush()
    worker = who.worker(server, burst=False, pickups=n, cap_s=n * interval_s + 10)
    producer = who.client(server, op="paced", n=n, interval_s=interval_s)
    m = measure(server, [worker], background=[producer])
    values = m.results[0]["pickups"]
    # what waiting costs: the server's work while the worker mostly waits for the next job
    elapsed = max(m.results[0]["t_last"] - m.results[0]["t0"], 1e-3)
    return {f"p{p}": percentile(values, p) for p in (50, 95, 99)} | {
        "seen": len(values),
        "server_cpu_pct": m.server_cpu_s / elapsed * 100,
        "commands_per_s": sum(m.calls.values()) / elapsed,
    }


def result_latency(server: Server, who: Contender, n: int) -> dict[str, float]:
    """A client enqueues a 10 ms job and awaits its result, ``n`` times; seconds from the job's end to the answer."""
    server.flush()
    worker = who.worker(server, burst=False, cap_s=600)
    client = who.client(server, op="result", n=n)
    m = measure(server, [client], background=[worker])
    values = m.results[0]["latencies"]
    return {f"p{p}": percentile(values, p) for p in (50, 95, 99)}
