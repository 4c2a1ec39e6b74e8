"""Key names. arq's layout (../shared/WIRE.md) is kept exactly; what runner adds lives under ``runner:``,
where arq never looks."""

from __future__ import annotations

default_queue_name = "arq:queue"
job_key_prefix = "arq:job:"
in_progress_key_prefix = "arq:in-progress:"
result_key_prefix = "arq:result:"
retry_key_prefix = "arq:retry:"
abort_jobs_ss = "arq:abort"
health_check_key_suffix = ":health-check"

# runner-only keys
wake_key_prefix = "runner:wake:"  # LIST per queue: a token per enqueue; idle workers BLPOP on it
done_channel_prefix = "runner:done:"  # pub/sub per queue: space-separated ids of jobs that just finished
unique_key_prefix = "runner:unique:"  # STRING per job id: `_unique_for` marker that refuses a second enqueue
# STRING per enqueue call: the call's answer, so a call resent after a lost reply is applied once (enqueue.lua)
enqueued_key_prefix = "runner:enqueued:"
workers_key_prefix = "runner:workers:"  # STRING per queue and worker: `<prefix><queue>:<worker id>` -> health line
stats_key_prefix = "runner:stats:"  # HASH per queue and minute: complete/failed/retried counts (runner info)

retry_key_ttl_s = 88_400
expires_extra_ms_default = 86_400_000
stats_key_ttl_s = 3_900  # an hour of per-minute counts, and a little more


def wake_key(queue_name: str) -> str:
    return wake_key_prefix + queue_name


def enqueued_key(call_token: str) -> str:
    return enqueued_key_prefix + call_token


def done_channel(queue_name: str) -> str:
    return done_channel_prefix + queue_name


def health_check_key(queue_name: str) -> str:
    return queue_name + health_check_key_suffix


def stats_key(queue_name: str, minute: int) -> str:
    """The counts hash of ``queue_name`` for one minute (unix ms // 60 000)."""
    return f"{stats_key_prefix}{queue_name}:{minute}"


def worker_key(queue_name: str, worker_id: str) -> str:
    return f"{workers_key_prefix}{queue_name}:{worker_id}"
