"""Key names: one ``KeyLayout`` object says where every key of a queue lives, and nothing else builds one.

``ARQ_LAYOUT``, the default, is arq's layout byte for byte (../shared/WIRE.md); what runner adds lives under
``runner:``, where arq never looks:

    arq:queue                        ZSET   the queue (any name): job id -> ms it may run
    arq:job:<id>                     STRING the serialized job
    arq:in-progress:<id>             STRING a worker holds the job
    arq:result:<id>                  STRING the serialized result
    arq:retry:<id>                   STRING the try counter
    arq:abort                        ZSET   job id -> ms an abort was asked (shared by every queue)
    <queue>:health-check             STRING arq's health line
    runner:wake:<queue>              LIST   a token per enqueue; idle workers BLPOP on it
    runner:done:<queue>              PUBSUB ids of jobs that just finished (wakes Job.result())
    runner:unique:<id>               STRING ``_unique_for`` marker that refuses a second enqueue
    runner:enqueued:<token>          STRING one enqueue call's answer, so a call resent after a lost reply is
                                            applied once (enqueue.lua)
    runner:claimed:<token>           HASH   the ids one claim call took, so a call resent after a lost reply hands
                                            them over instead of leaving them to wait a lease (claim.lua)
    runner:workers:<queue>:<worker>  STRING one worker's own health line
    runner:health-writer:<queue>     STRING the line a runner worker last wrote to arq's health key, so a reader can
                                            tell a dead runner worker's leftover from an arq worker's record
    runner:stats:<queue>:<minute>    HASH   complete/failed/retried counts of one minute (runner info)
    runner:cron:last:<name>          STRING unix ms of the latest occurrence of a cron job enqueued
    runner:failed:<queue>            ZSET   id of each failed job whose result is kept -> finish ms (the dashboard)
    runner:failed-expiry:<queue>     ZSET   the same ids -> ms their result expires (prunes the one above)
    runner:presence:<queue>          ZSET   worker id -> ms of its latest presence record
    runner:worker-info:<queue>:<id>  STRING one worker's presence record (JSON: host, pid, counters, running ids)
    runner:dedup:<queue>:<key>       STRING a throttle or debounce window: the id of the job it holds
    runner:flow-*:<queue>[:<name>]   flow control (priorities, caps, rate limits, groups): the structures that
                                            runner/engine/flow.py draws; a job that uses none never enters them

Every method takes the queue, even where arq's layout ignores it: ``CLUSTER_LAYOUT``, for Redis Cluster, puts
every key of a queue under one hash tag, ``{<queue>}``, so each script's keys live in one slot (docs/cluster.md):

    {arq:queue}:queue  {arq:queue}:job:<id>  {arq:queue}:in-progress:<id>  {arq:queue}:result:<id>  ...

A queue split over shards (runner/engine/shards.py) is several queues: shard 0 is the queue itself, shard i is the
queue ``<queue>:<i>`` (``{hot:1}:queue`` …), each with a tag of its own; ``shard_index`` says which one holds an id.

The scripts get every key (or, where a script finds the ids itself, every key prefix) from here through KEYS; a
key a script builds is ``prefix .. id``, and a cluster prefix carries the tag, so it hashes to the same slot.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping

default_queue_name = "arq:queue"
retry_key_ttl_s = 88_400
expires_extra_ms_default = 86_400_000
stats_key_ttl_s = 3_900  # an hour of per-minute counts, and a little more


class KeyLayout:
    """arq's key layout; a subclass may place the keys elsewhere (every engine part asks only these methods).

    The ``*_prefix`` methods give what an id is appended to, for scripts that find ids themselves and for SCANs.
    """

    name = "arq"
    # every key of a queue in one hash slot, so a script's keys are on one node of a Redis Cluster
    cluster_safe = False

    # -- per queue --------------------------------------------------------------------------------------------------

    def queue(self, queue_name: str) -> str:
        return queue_name

    def abort(self, queue_name: str) -> str:
        return "arq:abort"

    def health_check(self, queue_name: str) -> str:
        return queue_name + ":health-check"

    def wake(self, queue_name: str) -> str:
        return "runner:wake:" + queue_name

    def done_channel(self, queue_name: str) -> str:
        return "runner:done:" + queue_name

    def stats(self, queue_name: str, minute: int) -> str:
        """The counts hash of ``queue_name`` for one minute (unix ms // 60 000)."""
        return f"runner:stats:{queue_name}:{minute}"

    def workers_prefix(self, queue_name: str) -> str:
        return f"runner:workers:{queue_name}:"

    def worker(self, queue_name: str, worker_id: str) -> str:
        return self.workers_prefix(queue_name) + worker_id

    def health_writer(self, queue_name: str) -> str:
        return f"runner:health-writer:{queue_name}"

    def cron_last(self, queue_name: str, cron_name: str) -> str:
        return "runner:cron:last:" + cron_name

    def failed(self, queue_name: str) -> str:
        """The queue's failed jobs with a kept result, by finish time (the dashboard pages it)."""
        return "runner:failed:" + queue_name

    def failed_expiry(self, queue_name: str) -> str:
        """The same failed jobs by the time their result expires, so expired entries go in one range."""
        return "runner:failed-expiry:" + queue_name

    def presence(self, queue_name: str) -> str:
        return "runner:presence:" + queue_name

    def worker_info(self, queue_name: str, worker_id: str) -> str:
        return f"runner:worker-info:{queue_name}:{worker_id}"

    def enqueued(self, queue_name: str, call_token: str) -> str:
        return "runner:enqueued:" + call_token

    def claimed(self, queue_name: str, holder_token: str) -> str:
        return self.claimed_prefix(queue_name) + holder_token

    def claimed_prefix(self, queue_name: str) -> str:
        return "runner:claimed:"

    def dedup(self, queue_name: str, dedup_key: str) -> str:
        return f"runner:dedup:{queue_name}:{dedup_key}"

    def flow(self, queue_name: str, part: str) -> str:
        """One of the flow-control structures of ``queue_name`` (``part`` names it: runner/engine/flow.py)."""
        return f"runner:flow-{part}:{queue_name}"

    def flow_prefix(self, queue_name: str, part: str) -> str:
        """What a lane or scope name is appended to, for the flow structures kept one per lane or scope."""
        return f"runner:flow-{part}:{queue_name}:"

    # -- per job ----------------------------------------------------------------------------------------------------

    def job_prefix(self, queue_name: str) -> str:
        return "arq:job:"

    def in_progress_prefix(self, queue_name: str) -> str:
        return "arq:in-progress:"

    def result_prefix(self, queue_name: str) -> str:
        return "arq:result:"

    def retry_prefix(self, queue_name: str) -> str:
        return "arq:retry:"

    def unique_prefix(self, queue_name: str) -> str:
        return "runner:unique:"

    def job(self, queue_name: str, job_id: str) -> str:
        return self.job_prefix(queue_name) + job_id

    def in_progress(self, queue_name: str, job_id: str) -> str:
        return self.in_progress_prefix(queue_name) + job_id

    def result(self, queue_name: str, job_id: str) -> str:
        return self.result_prefix(queue_name) + job_id

    def retry(self, queue_name: str, job_id: str) -> str:
        return self.retry_prefix(queue_name) + job_id

    def unique(self, queue_name: str, job_id: str) -> str:
        return self.unique_prefix(queue_name) + job_id

    # -- shards of a hot queue (docs/cluster.md) ----------------------------------------------------------------

    def shard_queue(self, queue_name: str, shard: int) -> str:
        """The queue that holds shard ``shard`` of a queue split over shards: shard 0 is the queue itself (so a
        queue that gains shards keeps its waiting jobs where workers look), shard i > 0 is ``<queue>:<i>``."""
        return queue_name if shard == 0 else f"{queue_name}:{shard}"

    def __repr__(self) -> str:
        return f"<KeyLayout {self.name}>"


ARQ_LAYOUT = KeyLayout()


class ClusterLayout(KeyLayout):
    """Redis Cluster's layout: every key of a queue is ``{<queue>}:<kind>[:<id>]``, one hash tag per queue.

    A queue's keys share one slot, so every script runs on the one node that holds it, and different queues (or
    the shards of one, ``shard_queue``) spread over the cluster's masters. arq cannot read it.
    """

    name = "cluster"
    cluster_safe = True

    def _key(self, queue_name: str, kind: str) -> str:
        return f"{{{queue_name}}}:{kind}"

    def queue(self, queue_name: str) -> str:
        return self._key(queue_name, "queue")

    def abort(self, queue_name: str) -> str:
        return self._key(queue_name, "abort")

    def health_check(self, queue_name: str) -> str:
        return self._key(queue_name, "health-check")

    def wake(self, queue_name: str) -> str:
        return self._key(queue_name, "wake")

    def done_channel(self, queue_name: str) -> str:
        return self._key(queue_name, "done")

    def stats(self, queue_name: str, minute: int) -> str:
        return self._key(queue_name, f"stats:{minute}")

    def workers_prefix(self, queue_name: str) -> str:
        return self._key(queue_name, "workers:")

    def health_writer(self, queue_name: str) -> str:
        return self._key(queue_name, "health-writer")

    def cron_last(self, queue_name: str, cron_name: str) -> str:
        return self._key(queue_name, "cron:last:" + cron_name)

    def failed(self, queue_name: str) -> str:
        return self._key(queue_name, "failed")

    def failed_expiry(self, queue_name: str) -> str:
        return self._key(queue_name, "failed-expiry")

    def presence(self, queue_name: str) -> str:
        return self._key(queue_name, "presence")

    def worker_info(self, queue_name: str, worker_id: str) -> str:
        return self._key(queue_name, "worker-info:" + worker_id)

    def enqueued(self, queue_name: str, call_token: str) -> str:
        return self._key(queue_name, "enqueued:" + call_token)

    def claimed_prefix(self, queue_name: str) -> str:
        return self._key(queue_name, "claimed:")

    def job_prefix(self, queue_name: str) -> str:
        return self._key(queue_name, "job:")

    def in_progress_prefix(self, queue_name: str) -> str:
        return self._key(queue_name, "in-progress:")

    def result_prefix(self, queue_name: str) -> str:
        return self._key(queue_name, "result:")

    def retry_prefix(self, queue_name: str) -> str:
        return self._key(queue_name, "retry:")

    def unique_prefix(self, queue_name: str) -> str:
        return self._key(queue_name, "unique:")

    def shard_queue(self, queue_name: str, shard: int) -> str:
        # a queue name, not a key: each shard is a queue with a hash tag of its own, {<queue>:<i>}
        return KeyLayout.shard_queue(self, queue_name, shard)


def _tagged(method: Callable[..., str]) -> Callable[..., str]:
    def key(self: ClusterLayout, queue_name: str, *args: str) -> str:
        found = method(self, queue_name, *args)  # built from the tagged methods above (job, worker, …) it has the tag
        return found if found.startswith(self._key(queue_name, "")) else self._key(queue_name, found)

    return key


# a key added to KeyLayout and not placed above still gets the queue's tag (in front of arq's name for it), so a
# new key can never leave the queue's slot
for _name, _method in list(vars(KeyLayout).items()):
    if callable(_method) and not _name.startswith("_") and _name not in vars(ClusterLayout):
        setattr(ClusterLayout, _name, _tagged(_method))

CLUSTER_LAYOUT = ClusterLayout()
LAYOUTS = {layout.name: layout for layout in (ARQ_LAYOUT, CLUSTER_LAYOUT)}


def shard_index(job_id: str, shards: int) -> int:
    """The shard a job id lives on: a hash of the id, the same in every process, so an id is always looked for (and
    refused when taken) on one shard."""
    return 0 if shards <= 1 else zlib.crc32(job_id.encode()) % shards


def shard_queues(layout: KeyLayout, queue_name: str, shards: int) -> list[str]:
    """The queues a queue split over ``shards`` shards is made of, shard 0 first."""
    return [layout.shard_queue(queue_name, shard) for shard in range(max(shards, 1))]


def check_shards(layout: KeyLayout, shards: Mapping[str, int]) -> None:
    """Refuse a shard count below 1, or shards on a layout that cannot spread them (arq's reads one key per queue)."""
    for queue_name, count in shards.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f'shards of queue "{queue_name}" must be a whole number of at least 1 (got {count!r})')
        if count > 1 and not layout.cluster_safe:
            raise ValueError(
                f'queue "{queue_name}" split over {count} shards needs the cluster layout (cluster=True): arq\'s '
                "layout keeps a queue in one key, which arq's workers read"
            )


def check_queue_name(layout: KeyLayout, queue_name: str) -> None:
    """Refuse a queue name the layout cannot place: a brace would end the cluster layout's hash tag early."""
    if layout.cluster_safe and ("{" in queue_name or "}" in queue_name):
        raise ValueError(
            f'queue name "{queue_name}" holds a brace, which the cluster layout uses for its hash tag; '
            "choose a name without { or }"
        )
