"""arq's ``arq.constants`` under runner: the key names of arq's layout (../shared/WIRE.md) and arq's defaults.

The key names are read from ``ARQ_LAYOUT``, the one place the engine takes them from.
"""

from __future__ import annotations

from runner.engine.keys import ARQ_LAYOUT, default_queue_name, expires_extra_ms_default as expires_extra_ms
from runner.engine.utils import timezone_env_vars

job_key_prefix = ARQ_LAYOUT.job_prefix(default_queue_name)
in_progress_key_prefix = ARQ_LAYOUT.in_progress_prefix(default_queue_name)
result_key_prefix = ARQ_LAYOUT.result_prefix(default_queue_name)
retry_key_prefix = ARQ_LAYOUT.retry_prefix(default_queue_name)
abort_jobs_ss = ARQ_LAYOUT.abort(default_queue_name)
health_check_key_suffix = ARQ_LAYOUT.health_check("")
# arq's age (seconds) of abort requests it prunes; runner instead drops an abort asked before the job was enqueued
abort_job_max_age = 60
# arq keeps a cron job's in-progress key this many seconds after it ends, to stop a second run of the occurrence;
# runner refuses the occurrence's id with a runner-only marker instead, so a finished cron job reads not_found
keep_cronjob_progress = 60

__all__ = [
    "abort_job_max_age",
    "abort_jobs_ss",
    "default_queue_name",
    "expires_extra_ms",
    "health_check_key_suffix",
    "in_progress_key_prefix",
    "job_key_prefix",
    "keep_cronjob_progress",
    "result_key_prefix",
    "retry_key_prefix",
    "timezone_env_vars",
]
