"""The outcome writer: outcomes that arrive together are written by one ``finish.lua`` call.

It owns the pending outcomes, the task that flushes them, and the lock that orders every write to the worker's
claims: a heartbeat sent before an outcome must never land after it (it would take back a released claim). The
heartbeat runs in the lease thread (lease_thread.py), so the lock is a ``threading.Lock``; the writer takes it
without ever blocking the event loop.

finish.lua applies an outcome only while the job's claim still holds this worker's token; an outcome it drops
(another worker took the job over while this one stalled) is said once, through ``ClaimLosses``. When Redis is
out of memory the batch goes again without its results (``FINISH_WITHOUT_RESULTS``), which only deletes and moves
keys: jobs keep finishing, and finishing them frees memory. A batch with jobs that hold flow-control slots
(runner/engine/flow.py) sends flow_release.lua after finish.lua in one transaction, so a slot is never freed
without its job's outcome, nor kept after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, OutOfMemoryError

from runner.engine import keys
from runner.engine.flow import flow_keys
from runner.engine.keys import KeyLayout
from runner.engine.lifecycle import REDIS_ERRORS, Lifecycle, Outage
from runner.engine.protocol import Outcome, parse_losses
from runner.engine.records import ClaimLosses
from runner.engine.utils import timestamp_ms

logger = logging.getLogger("runner.worker")


class OutcomeWriter:
    """Batches outcomes and writes them, retrying through outages.

    Args:
        script: ``finish.lua``, registered on the worker's pool.
        layout: where the keys are.
        queue_name: the worker's queue.
        lifecycle: a forced stop gives up a write that keeps failing (the jobs run again).
        outage: the worker's outage policy.
        without_results: ``FINISH_WITHOUT_RESULTS``, registered on the pool (None: wait for memory instead).
        losses: where dropped outcomes are said (once per claim).
        release: ``flow_release.lua``, registered on the pool (None: no job holds flow slots).
    """

    def __init__(
        self,
        *,
        script: AsyncScript,
        layout: KeyLayout,
        queue_name: str,
        lifecycle: Lifecycle,
        outage: Outage,
        without_results: AsyncScript | None = None,
        losses: ClaimLosses | None = None,
        release: AsyncScript | None = None,
    ) -> None:
        self.script = script
        self.release = release
        self.without_results = without_results
        self.losses = losses or ClaimLosses(0)
        self.layout = layout
        self.queue_name = queue_name
        self.lifecycle = lifecycle
        self.outage = outage
        self.lock = threading.Lock()
        self._pending: list[tuple[Outcome, asyncio.Future[None] | None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._deferred = False
        # every finish.lua call's keys but the stats hash, which changes each minute
        self._key_prefixes = [
            layout.job_prefix(queue_name),
            layout.in_progress_prefix(queue_name),
            layout.retry_prefix(queue_name),
            layout.result_prefix(queue_name),
            layout.claimed_prefix(queue_name),
        ]

    async def write(self, outcome: Outcome, *, wait: bool = False) -> None:
        """Queue ``outcome`` for the next batch; with ``wait``, return only once it is written (or given up)."""
        # a future only for a caller that waits: most outcomes are fire and forget
        future: asyncio.Future[None] | None = asyncio.get_running_loop().create_future() if wait else None
        self._pending.append((outcome, future))
        if future is not None:
            self._deferred = False  # its job waits for it, and holds its slot meanwhile: never hold it back
        self._start()
        if future is not None:
            await asyncio.shield(future)

    def defer(self) -> None:
        """Hold new outcomes back until ``resume``: the poll loop, waiting for a slot, claims as soon as a job ends,
        and its claim should reach Redis before the outcomes of the jobs that freed the slots, which Redis would
        otherwise apply first while the worker waits for its next jobs. Written right after, they overlap with
        those jobs. A job whose end waits for its outcome (``write(wait=True)``) ends the hold."""
        self._deferred = True

    def resume(self) -> None:
        """Write what was held back (see ``defer``)."""
        if self._deferred:
            self._deferred = False
            self._start()

    def _start(self) -> None:
        if self._pending and not self._deferred and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._flush())

    @property
    def busy(self) -> bool:
        """Outcomes are waiting or being written."""
        return bool(self._pending) or (self._flusher is not None and not self._flusher.done())

    async def wait_idle(self) -> None:
        """Wait until every outcome queued so far is written."""
        self.resume()
        if self._flusher is not None and not self._flusher.done():
            await asyncio.wait({self._flusher})

    async def close(self, timeout: float = 30) -> None:  # noqa: ASYNC109
        """On shutdown: give the outcomes still pending up to ``timeout`` seconds to land."""
        self.resume()
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._flusher), timeout)

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """Hold ``lock`` around a write; the lease thread holds it for one short round at most, so poll for it."""
        while not self.lock.acquire(blocking=False):  # noqa: ASYNC110 - a threading.Lock has no awaitable wait
            await asyncio.sleep(0.001)
        try:
            yield
        finally:
            self.lock.release()

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            values: list[Any] = []
            for outcome, _ in batch:
                values += outcome.script_args()
            await self._write_batch(values, [outcome for outcome, _ in batch])
            for _, future in batch:
                if future is not None and not future.done():
                    future.set_result(None)

    async def _write_batch(self, values: list[Any], outcomes: list[Outcome]) -> None:
        layout, queue = self.layout, self.queue_name
        while True:
            try:
                # one stats hash per minute feeds `runner info`'s completions and failures per minute
                stats = layout.stats(queue, timestamp_ms() // 60_000)
                script_keys = [
                    layout.queue(queue),
                    layout.abort(queue),
                    stats,
                    layout.failed(queue),
                    layout.failed_expiry(queue),
                    *self._key_prefixes,
                ]
                reply = await self._call(script_keys, values, outcomes)
                break
            except REDIS_ERRORS as exc:
                # the outcomes wait in memory until Redis is back; the claims' leases keep the jobs safe
                await self.outage.failed(exc)
                if self.lifecycle.forced:
                    logger.error("giving up writing %d outcomes; their jobs will run again", len(outcomes))
                    return
        self.outage.recovered()
        self._report_dropped(reply, outcomes)

    async def _call(self, script_keys: list[str], values: list[Any], outcomes: list[Outcome]) -> Any:
        """One finish.lua call; at Redis's memory limit, the same outcomes without their results."""
        header: list[Any] = [self.layout.done_channel(self.queue_name), keys.stats_key_ttl_s]
        flow_ids = [o.job_id for o in outcomes if o.flow]
        try:
            async with self._locked():
                reply = await self._send(self.script, script_keys, [*header, 1, *values], flow_ids)
        except OutOfMemoryError as exc:
            if self.without_results is None:
                raise
            self.outage.out_of_memory(exc)
            async with self._locked():
                reply = await self._send(self.without_results, script_keys, [*header, 0, *values], flow_ids)
            self.outage.without_results += sum(1 for o in outcomes if o.kind.finishes and o.result)
            return reply
        self.outage.memory_recovered()
        return reply

    async def _send(self, script: AsyncScript, script_keys: list[str], args: list[Any], flow_ids: list[str]) -> Any:
        """finish.lua alone, or with flow_release.lua for the jobs that hold flow slots, in one transaction."""
        if not flow_ids or self.release is None:
            return await script(keys=script_keys, args=args)
        layout, queue = self.layout, self.queue_name
        release_keys = [layout.queue(queue), layout.wake(queue), layout.in_progress_prefix(queue)]
        release_keys += flow_keys(layout, queue)
        release_args: list[Any] = [timestamp_ms(), *flow_ids]
        if layout.cluster_safe:
            # a cluster pipeline carries no scripts: the release follows at once (a lapse frees what a crash keeps)
            reply = await script(keys=script_keys, args=args)
            await self.release(keys=release_keys, args=release_args)
            return reply
        replies = await self._transaction([(script, script_keys, args), (self.release, release_keys, release_args)])
        if isinstance(replies[0], NoScriptError):
            # the server lost its scripts (a restart, SCRIPT FLUSH): the release did nothing to a job still held
            await self._load(script, self.release)
            replies = await self._transaction([(script, script_keys, args), (self.release, release_keys, release_args)])
        elif isinstance(replies[1], NoScriptError):
            # the outcomes are written: only the release goes again (a second finish would report them as gone)
            await self._load(self.release)
            replies[1:] = await self._transaction([(self.release, release_keys, release_args)])
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies[0]

    @staticmethod
    async def _transaction(calls: list[tuple[AsyncScript, list[str], list[Any]]]) -> list[Any]:
        """The scripts by their sha in one MULTI/EXEC, each reply or error in order. Not through redis-py's script
        objects: a pipeline that carries them first asks SCRIPT EXISTS, a round trip more before every outcome
        that frees a flow slot (the wait of every capped job's successor)."""
        client: Any = calls[0][0].registered_client
        async with client.pipeline(transaction=True) as pipe:
            for script, script_keys, args in calls:
                pipe.evalsha(script.sha, len(script_keys), *script_keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    @staticmethod
    async def _load(*scripts: AsyncScript) -> None:
        for script in scripts:
            script.sha = await script.registered_client.script_load(script.script)

    def _report_dropped(self, reply: Any, outcomes: list[Outcome]) -> None:
        if not isinstance(reply, list) or len(reply) < 3:
            return
        by_id = {outcome.job_id: outcome for outcome in outcomes}
        for job_id, loss in parse_losses(reply[1:]):
            outcome = by_id.get(job_id)
            if outcome is not None:
                self.losses.report(job_id, outcome.token, loss, outcome=outcome.kind.name.lower())
