"""Flow control: priorities, global concurrency caps, rate limits and per-group fairness, enforced in Redis.

A job takes the flow path when it has a ``_priority`` or a ``_group``, or its function has a limit or a default
priority (published by the workers in the ``spec`` hash); every other job is written, claimed and finished
exactly as arq does it, and never enters these structures (runner-only keys, ``KeyLayout.flow``):

    spec     HASH  function (or '*', the queue) -> its limits: 'cap rate_n rate_ms group_cap group_n group_ms'
    meta     HASH  flow job id -> 'due<US>priority<US>function<US>group'
    delayed  ZSET  flow job id -> ms it is due (deferred, retried)
    lanes    ZSET  lane -> its order: the best lane is claimed first (priority, then FIFO, groups taking turns)
    lane:<l> ZSET  a lane's due jobs -> order (-priority * 2**40 + sequence)
    seq      STRING the sequence counter
    running  ZSET  id of a job holding slots -> ms its claim lapses at the latest (a dead worker's slots come back)
    slots:<s>  SET ids running in scope s ('*' the queue, 'f<US>function', 'f<US>function<US>group')
    rate:<s>   STRING scope s's rate state (GCRA: the theoretical arrival time, ms)
    parked:<s> SET  lanes waiting for a slot of scope s (not looked at until one frees: waiting costs nothing)
    waiting  ZSET  lane -> ms its rate lets it go again

A waiting flow job is also in the queue ZSET at ``due + PARK`` ms (about 317 years on), so an arq client sees it as
deferred and neither arq's workers nor runner's plain claim ever reach it. The scripts are claim.lua (its flow
steps: scripts/include/flow_claim.lua), enqueue_flow.lua and flow_release.lua; shared steps in include/flow.lua.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

from runner.engine.keys import KeyLayout
from runner.errors import InvalidArgument

US = "\x1f"
PARK_MS = 10_000_000_000_000
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000
_PERIODS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smh])\s*$")

# the order of the flow keys every flow script takes (after its own), as include/flow.lua names them
FLOW_KEY_PARTS = ("spec", "meta", "delayed", "lanes", "lane", "seq", "running", "slots", "rate", "parked", "waiting")
_PREFIX_PARTS = {"lane", "slots", "rate", "parked"}


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``count`` starts per ``period_ms``, spaced evenly, with bursts of a tenth of ``count`` (at least 1)."""

    count: int
    period_ms: int

    @classmethod
    def parse(cls, value: str | RateLimit) -> RateLimit:
        """``"100/s"``, ``"600/m"``, ``"5/h"`` (also ``"10/5s"``: 10 per 5 seconds).

        Raises:
            InvalidArgument: any other form.
        """
        if isinstance(value, RateLimit):
            return value
        found = _RATE.match(value) if isinstance(value, str) else None
        if found is None or int(found.group(1)) <= 0 or found.group(2) in {"0"}:
            raise InvalidArgument(
                f'rate limit {value!r} must be "<count>/<s|m|h>" with a count above 0, e.g. "100/s", "600/m", "5/h"'
            )
        periods = int(found.group(2) or 1)
        return cls(int(found.group(1)), periods * _PERIODS_MS[found.group(3)])

    def __str__(self) -> str:
        for unit, ms in _PERIODS_MS.items():
            if self.period_ms == ms:
                return f"{self.count}/{unit}"
        return f"{self.count}/{self.period_ms // 1000}s"

    @property
    def burst(self) -> int:
        return max(1, self.count // 10)


@dataclass(frozen=True, slots=True)
class FlowLimits:
    """The flow settings of one function (or, with only ``concurrency`` and ``rate_limit``, of a whole queue).

    Attributes:
        priority: the default priority of its jobs (higher runs first; -1000..1000; 0 is a plain job's).
        concurrency: most of its jobs running at once across every worker of the queue (None: no cap).
        rate_limit: most of its jobs started per period across every worker.
        group_concurrency, group_rate_limit: the same, per ``_group`` of its jobs.
    """

    priority: int = 0
    concurrency: int | None = None
    rate_limit: RateLimit | None = None
    group_concurrency: int | None = None
    group_rate_limit: RateLimit | None = None

    @classmethod
    def build(
        cls,
        *,
        priority: int | None = None,
        concurrency: int | None = None,
        rate_limit: str | RateLimit | None = None,
        group_concurrency: int | None = None,
        group_rate_limit: str | RateLimit | None = None,
        label: str = "function",
    ) -> FlowLimits:
        """Checked limits; ``label`` names the owner in errors.

        Raises:
            InvalidArgument: a priority out of range, a cap below 1, a malformed rate.
        """
        check_priority(priority, f"{label}: priority")
        for name, cap in (("concurrency", concurrency), ("group_concurrency", group_concurrency)):
            if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
                raise InvalidArgument(f"{label}: {name} must be a whole number of at least 1 (got {cap!r})")
        try:
            rate = None if rate_limit is None else RateLimit.parse(rate_limit)
            group_rate = None if group_rate_limit is None else RateLimit.parse(group_rate_limit)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{label}: {exc}") from None
        return cls(priority or 0, concurrency, rate, group_concurrency, group_rate)

    @property
    def active(self) -> bool:
        """Its jobs take the flow path."""
        return bool(self.priority or self.limited)

    @property
    def limited(self) -> bool:
        limits = (self.concurrency, self.rate_limit, self.group_concurrency, self.group_rate_limit)
        return any(limit is not None for limit in limits)

    def spec_value(self) -> str:
        """The ``spec`` hash value the scripts read (include/flow.lua ``spec_of``)."""

        def rate(limit: RateLimit | None) -> str:
            return "0 0" if limit is None else f"{limit.count} {limit.period_ms}"

        return (
            f"{self.concurrency or 0} {rate(self.rate_limit)} {self.group_concurrency or 0} "
            f"{rate(self.group_rate_limit)} {self.priority}"
        )

    def describe(self) -> str:
        """``concurrency=3 rate_limit=50/s`` (what is set)."""
        parts = []
        for name in ("priority", "concurrency", "rate_limit", "group_concurrency", "group_rate_limit"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value}")
        return " ".join(parts)


def check_priority(priority: Any, label: str = "_priority") -> None:
    if priority is None:
        return
    if isinstance(priority, bool) or not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidArgument(
            f"{label} must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY} (got {priority!r})"
        )


def check_group(group: Any) -> None:
    if group is None:
        return
    if not isinstance(group, str) or not group or US in group:
        raise InvalidArgument(f"_group must be a non-empty string without the byte 0x1f (got {group!r})")


def flow_keys(layout: KeyLayout, queue_name: str) -> list[str]:
    """The flow keys of ``queue_name`` in the order the scripts take them (``FLOW_KEY_PARTS``)."""
    return [
        layout.flow_prefix(queue_name, part) if part in _PREFIX_PARTS else layout.flow(queue_name, part)
        for part in FLOW_KEY_PARTS
    ]


def spec_fields(functions: dict[str, FlowLimits], queue: FlowLimits | None) -> dict[str, str]:
    """The ``spec`` hash a worker publishes: its functions that take the flow path, and '*' for queue-wide limits."""
    fields = {name: limits.spec_value() for name, limits in functions.items() if limits.active}
    if queue is not None and queue.limited:
        fields["*"] = queue.spec_value()
    return fields


def parse_spec(value: bytes | str) -> FlowLimits:
    """Read one ``spec`` hash value back (runner info)."""
    text = value.decode() if isinstance(value, bytes) else value
    numbers = [int(float(part)) for part in text.split()] + [0] * 7
    cap, rate_n, rate_ms, group_cap, group_n, group_ms, priority = numbers[:7]
    return FlowLimits(
        priority,
        cap or None,
        RateLimit(rate_n, rate_ms) if rate_n else None,
        group_cap or None,
        RateLimit(group_n, group_ms) if group_n else None,
    )


class SpecCache:
    """A producer's copy of a queue's ``spec`` hash, read again after ``ttl_s``: which functions take the flow path
    and their default priority, without a round trip per enqueue."""

    def __init__(self, ttl_s: float = 1.0) -> None:
        self.ttl_s = ttl_s
        self._specs: dict[str, tuple[float, dict[str, FlowLimits]]] = {}

    def fresh(self, queue_name: str) -> dict[str, FlowLimits] | None:
        found = self._specs.get(queue_name)
        if found is None or time.monotonic() - found[0] > self.ttl_s:
            return None
        return found[1]

    def store(self, queue_name: str, raw: dict[Any, Any]) -> dict[str, FlowLimits]:
        specs = {(k.decode() if isinstance(k, bytes) else k): parse_spec(v) for k, v in raw.items()}
        self._specs[queue_name] = (time.monotonic(), specs)
        return specs


def rate_use(limit: RateLimit, tat_ms: float | None, now_ms: int) -> float:
    """About how much of the rate's current period is used, from its GCRA state (runner info)."""
    if tat_ms is None or tat_ms <= now_ms:
        return 0.0
    step = limit.period_ms / limit.count
    return min(math.ceil((tat_ms - now_ms) / step), limit.count)


async def publish_spec(pool: Any, queue_name: str, functions: dict[str, FlowLimits], queue: FlowLimits | None) -> None:
    """Write the queue's ``spec`` hash from a starting worker's settings (the last worker to start wins): producers
    route by it and claims enforce it. A worker without flow settings leaves a peer's spec alone."""
    fields = spec_fields(functions, queue)
    if not fields:
        return
    key = pool.key_layout.flow(queue_name, "spec")
    async with pool.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping=fields)
        await pipe.execute()


@dataclass(frozen=True, slots=True)
class LimitUse:
    """One limit of a queue and its current use (``runner info``, the metrics).

    Attributes:
        scope: ``"queue"``, the function's name, or ``"<function> group <group>"``.
        kind: ``"concurrency"`` (use: jobs running) or ``"rate_limit"`` (use: starts in the current period).
        limit: the cap, or the rate as written (``"50/s"``).
        used: its current use.
    """

    scope: str
    kind: str
    limit: str
    used: float

    def as_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "kind": self.kind, "limit": self.limit, "used": self.used}


async def limit_uses(pool: Any, queue_name: str, *, now_ms: int, most_groups: int = 20) -> list[LimitUse]:
    """Every limit the queue's workers published, with its use now (groups: the first ``most_groups`` running)."""
    layout = pool.key_layout
    specs = SpecCache().store(queue_name, await pool.hgetall(layout.flow(queue_name, "spec")))
    slots, rates = layout.flow_prefix(queue_name, "slots"), layout.flow_prefix(queue_name, "rate")
    uses: list[LimitUse] = []
    for name, limits in sorted(specs.items()):
        scope = "*" if name == "*" else "f" + US + name
        label = "queue" if name == "*" else name
        uses += await _scope_uses(
            pool, label, slots + scope, rates + scope, limits.concurrency, limits.rate_limit, now_ms
        )
        if name == "*" or not (limits.group_concurrency or limits.group_rate_limit):
            continue
        groups: set[str] = set()
        for prefix in (slots, rates):
            async for key in pool.scan_iter(match=_glob(prefix + scope + US) + "*", count=1000):
                groups.add(key.decode()[len(prefix + scope + US) :])
                if len(groups) >= most_groups:
                    break
        for group in sorted(groups):
            uses += await _scope_uses(
                pool,
                f"{name} group {group}",
                slots + scope + US + group,
                rates + scope + US + group,
                limits.group_concurrency,
                limits.group_rate_limit,
                now_ms,
            )
    return uses


async def _scope_uses(
    pool: Any, label: str, slots_key: str, rate_key: str, cap: int | None, rate: RateLimit | None, now_ms: int
) -> list[LimitUse]:
    uses = []
    if cap:
        uses.append(LimitUse(label, "concurrency", str(cap), float(await pool.scard(slots_key))))
    if rate:
        tat = await pool.get(rate_key)
        used = rate_use(rate, None if tat is None else float(tat), now_ms)
        uses.append(LimitUse(label, "rate_limit", str(rate), used))
    return uses


def _glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


async def waiting_counts(pool: Any, queue_name: str) -> tuple[int, int]:
    """Flow jobs waiting in the queue: (all of them, those not yet due)."""
    layout = pool.key_layout
    async with pool.pipeline(transaction=False) as pipe:
        pipe.zcount(layout.queue(queue_name), PARK_MS, "+inf")
        pipe.zcard(layout.flow(queue_name, "delayed"))
        total, delayed = await pipe.execute()
    return int(total), int(delayed)
