"""The worker's lifecycle (runner/engine/lifecycle.py): one state that only moves forward."""

from __future__ import annotations

import asyncio

from runner.engine.lifecycle import Lifecycle, WorkerState


async def test_a_run_moves_forward_and_a_second_stop_is_forced() -> None:
    life = Lifecycle()
    life.request_stop()  # before the run: forgotten when it begins, as in arq
    life.begin()
    assert life.state is WorkerState.STARTING
    life.running()
    assert (life.state, life.stopping) == (WorkerState.RUNNING, False)
    assert life.request_stop() is WorkerState.STOPPING
    assert (life.stopping, life.forced) == (True, False)
    assert life.request_stop() is WorkerState.STOPPING_NOW
    assert life.forced
    life.ending()  # a stop under way is not turned into a plain end
    assert life.state is WorkerState.STOPPING_NOW
    life.stopped()
    assert life.request_stop() is WorkerState.STOPPED


async def test_a_burst_ends_without_a_stop() -> None:
    life = Lifecycle()
    life.begin()
    life.running()
    life.ending()
    assert (life.state, life.stopping, life.forced) == (WorkerState.ENDING, True, False)


async def test_waiting_ends_at_a_stop() -> None:
    life = Lifecycle()
    life.begin()
    assert not await life.wait_for_stop(timeout=0.01)
    forever = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(life.wait_any(forever))
    await asyncio.sleep(0)
    life.request_stop()
    await asyncio.wait_for(waiting, 5)
    assert forever.cancelled()  # what it waited for is given up with it
    assert await life.wait_for_stop(timeout=0)
