"""The bare loop: the practical ceiling for a Python worker on arq's wire format.

It claims a batch of due jobs, unpickles each, awaits its function, pickles an arq-format result, and writes
those results in the same script call that claims the next batch: one round trip per batch and nothing else.
It keeps no claim marker, no retries, no timeouts, no heartbeat and no hooks, so it is not a usable worker,
only the figure a real one is measured against.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from typing import Any

import redis.asyncio as aioredis
from common import JOB_FUNCTIONS, Tally, finish, read_spec, ready_and_wait, run_worker

# KEYS[1] queue; ARGV[1] now ms, ARGV[2] batch, ARGV[3] result ttl ms, then id, result pairs to finish
STEP = """
for i = 4, #ARGV, 2 do
  redis.call('SET', 'arq:result:' .. ARGV[i], ARGV[i + 1], 'PX', ARGV[3])
  redis.call('DEL', 'arq:job:' .. ARGV[i])
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
if #ids > 0 then
  redis.call('ZREM', KEYS[1], unpack(ids))
  for _, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = redis.call('GET', 'arq:job:' .. id) or ''
  end
end
return out
"""


async def bare_loop(client: aioredis.Redis, tally: Tally, batch: int, limit: int | None) -> None:
    step = client.register_script(STEP)
    finished: list[Any] = []
    while True:
        raw = await step(keys=["arq:queue"], args=[int(time.time() * 1000), batch, 3_600_000, *finished])
        finished = []
        if not raw:
            return
        for i in range(0, len(raw), 2):
            job_id, payload = raw[i], raw[i + 1]
            job = pickle.loads(payload)
            start_ms = int(time.time() * 1000)
            result = await JOB_FUNCTIONS[job["f"]]({}, *job["a"], **job["k"])
            finished += [
                job_id,
                pickle.dumps(
                    {
                        "t": 1,
                        "f": job["f"],
                        "a": job["a"],
                        "k": job["k"],
                        "et": job["et"],
                        "s": True,
                        "r": result,
                        "st": start_ms,
                        "ft": int(time.time() * 1000),
                        "q": "arq:queue",
                    }
                ),
            ]
            await tally.hook(None)
        if limit is not None and tally.done >= limit:
            if finished:
                await step(keys=["arq:queue"], args=[0, 0, 3_600_000, *finished])
            return


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    client = aioredis.Redis.from_url(spec["url"])
    await client.ping()
    tally = Tally()
    t0 = ready_and_wait()
    return await run_worker(
        spec, tally, lambda: bare_loop(client, tally, int(spec.get("batch", 100)), spec.get("limit")), t0
    )


if __name__ == "__main__":
    finish(asyncio.run(main(read_spec())))
