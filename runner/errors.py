"""The exceptions runner raises, in one tree.

    RunnerError                      root of everything runner raises on purpose
    ├── ConfigError                  a worker.toml, an env value or an import path is wrong
    │   └── ImportStringError        a "module:attr" path does not resolve (also an ImportError)
    ├── SerializationError           a job or result could not be encoded or decoded
    │   └── DeserializationError
    │       └── UnsafePayload        decoding would run code that a payload names (pickle)
    ├── ResultNotFound               the job has no result and is not queued (also a RuntimeError)
    ├── JobExecutionFailed           a job failed before or outside its function (also a RuntimeError)
    ├── RedisUnavailable             Redis could not be reached after every retry (also a ConnectionError)
    │   └── AuthenticationFailed     Redis refused the username or password
    ├── PoolExhausted                every connection of a pool stayed busy for pool_timeout (a ConnectionError)
    ├── FailedJobs                   ``Worker.run_check()`` saw failed jobs
    ├── EmbeddedServerError          the embedded server behind an ``embedded://`` URL could not start or stop
    └── Retry                        raised by a job to ask for another try (control flow, not an error)

Library code raises these; only the CLI turns them into ``Error: …`` lines and exit codes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from runner.text import plural


class RunnerError(Exception):
    """Something runner detected and can explain in one sentence."""

    default_message = "runner failed."

    def __init__(self, message: str | None = None, *args: Any) -> None:
        super().__init__(message or self.default_message, *args)


class ConfigError(RunnerError):
    """A configuration value is invalid; the message names the value and the fix."""

    default_message = "The configuration is invalid."


class ImportStringError(ConfigError, ImportError):
    """A ``"module:attr"`` import path is malformed or does not resolve."""

    default_message = 'Import string must be in format "<module>:<attribute>".'


class SerializationError(RunnerError, RuntimeError):
    """A job or a result could not be serialized."""

    default_message = "A job or result could not be serialized."


class DeserializationError(SerializationError):
    """A stored job or result could not be decoded."""

    default_message = "A stored job or result could not be decoded."


class UnsafePayload(DeserializationError):
    """A pickled payload names a class or function that runner does not import and call when it only reads jobs."""

    default_message = "The payload names code that runner does not run to decode it."


class ResultNotFound(RunnerError, RuntimeError):
    """The job has no stored result and is no longer queued."""

    default_message = (
        "The job has no stored result and is not queued; keep_result may be 0 or the result may have expired."
    )


class JobExecutionFailed(RunnerError, RuntimeError):
    """A job could not run: expired, unknown function, too many tries, aborted before it started."""

    default_message = "The job could not be executed."


class RedisUnavailable(RunnerError, ConnectionError):
    """Redis could not be reached after every configured retry."""

    default_message = "Redis could not be reached; check the URL and that the server is running."


class AuthenticationFailed(RedisUnavailable):
    """Redis refused the username or password; not retried, since waiting does not fix it."""

    default_message = "Redis refused the credentials; check the password and the username."


class PoolExhausted(RunnerError, ConnectionError):
    """All ``max_connections`` connections of a pool stayed busy for ``pool_timeout`` seconds."""

    default_message = "Every connection of the pool stayed busy; raise max_connections or pool_timeout."


class EmbeddedServerError(RunnerError):
    """The embedded Valkey server could not be started, reached or stopped; the message says why and what to do."""

    default_message = "The embedded server could not be started."


class FailedJobs(RunnerError, RuntimeError):
    """``Worker.run_check()`` found jobs that failed."""

    def __init__(self, count: int, job_results: list[Any]) -> None:
        self.count = count
        self.job_results = job_results
        super().__init__(f"{plural(count, 'job')} failed.")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.count, self.job_results)


class Retry(RunnerError, RuntimeError):
    """Raise inside a job to run it again, optionally after ``defer`` (seconds or a timedelta).

    The try still counts against ``max_tries``.
    """

    def __init__(self, defer: float | int | timedelta | None = None) -> None:
        if isinstance(defer, timedelta):
            defer = defer.total_seconds()
        self.defer_score: int | None = None if defer is None else int(round(defer * 1000))
        super().__init__(f"retry requested{'' if defer is None else f' in {defer:g}s'}.")

    def __reduce__(self) -> tuple[Any, ...]:
        # stored in results when retry_jobs is off: rebuild from the delay, not the message
        return type(self), (None if self.defer_score is None else self.defer_score / 1000,)

    def __repr__(self) -> str:
        return f"<Retry defer {(self.defer_score or 0) / 1000:.2f}s>"
