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

Every method takes the queue, even where arq's layout ignores it: a layout for Redis Cluster, where all keys
of a queue share one hash tag, needs it for every key, and the scripts already get every key (or, where a
script finds the ids itself, every key prefix) from here through KEYS.
"""

from __future__ import annotations

default_queue_name = "arq:queue"
retry_key_ttl_s = 88_400
expires_extra_ms_default = 86_400_000
stats_key_ttl_s = 3_900  # an hour of per-minute counts, and a little more


class KeyLayout:
    """arq's key layout; a subclass may place the keys elsewhere (every engine part asks only these methods).

    The ``*_prefix`` methods give what an id is appended to, for scripts that find ids themselves and for SCANs.
    """

    name = "arq"

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
        return "runner:claimed:" + holder_token

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

    def __repr__(self) -> str:
        return f"<KeyLayout {self.name}>"


ARQ_LAYOUT = KeyLayout()
