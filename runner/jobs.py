"""arq's ``arq.jobs`` under runner: ``Job``, its status and records, and the payload (de)serializers."""

from __future__ import annotations

from runner.constants import (
    abort_jobs_ss,
    default_queue_name,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
)
from runner.engine.job import (
    Job,
    JobDef,
    JobResult,
    JobStatus,
    deserialize_job,
    deserialize_job_raw,
    deserialize_result,
    logger,
    serialize_job,
    serialize_result,
)
from runner.engine.serializers import Deserializer, Serializer
from runner.errors import DeserializationError, ResultNotFound, SerializationError
from runner.utils import ms_to_datetime, poll, timestamp_ms

__all__ = [
    "DeserializationError",
    "Deserializer",
    "Job",
    "JobDef",
    "JobResult",
    "JobStatus",
    "ResultNotFound",
    "SerializationError",
    "Serializer",
    "deserialize_job",
    "deserialize_job_raw",
    "deserialize_result",
    "logger",
    "serialize_job",
    "serialize_result",
    # arq.jobs imports these from its sibling modules, so arq code may import them from here too
    "abort_jobs_ss",
    "default_queue_name",
    "in_progress_key_prefix",
    "job_key_prefix",
    "ms_to_datetime",
    "poll",
    "result_key_prefix",
    "timestamp_ms",
]
