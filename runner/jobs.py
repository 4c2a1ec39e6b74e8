"""arq's ``arq.jobs`` under runner: ``Job``, its status and records, and the payload (de)serializers."""

from __future__ import annotations

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
]
