"""The exceptions runner raises, in one tree.

    RunnerError                      root of everything runner raises on purpose
    ├── ConfigError                  a worker.toml, an env value or an import path is wrong
    │   ├── ImportStringError        a "module:attr" path does not resolve (also an ImportError)
    │   └── InvalidRedisUrl          a Redis URL cannot be parsed (also a RuntimeError)
    ├── SerializationError           a job or result could not be encoded or decoded
    │   └── DeserializationError
    │       └── UnsafePayload        decoding would run code that a payload names (pickle)
    ├── ResultNotFound               the job has no result and is not queued (also a RuntimeError)
    ├── JobExecutionFailed           a job failed before or outside its function (also a RuntimeError)
    ├── RedisUnavailable             Redis could not be reached after every retry (also redis-py's ConnectionError)
    │   └── AuthenticationFailed     Redis refused the username or password
    ├── PoolExhausted                every connection of a pool stayed busy for pool_timeout (a ConnectionError)
    ├── InvalidArgument              an engine call got a value it cannot use (also a ValueError and a RuntimeError)
    ├── NotACoroutine                a job or hook is not an ``async def`` function (also TypeError, RuntimeError)
    ├── FailedJobs                   ``Worker.run_check()`` saw failed jobs
    ├── EmbeddedServerError          the embedded server behind an ``embedded://`` URL could not start or stop
    ├── Retry                        raised by a job to ask for another try (control flow, not an error)
    └── RetryJob                     raised by a job to be put back and run again at once, as a cancelled job is

Library code raises these; only the CLI turns them into ``Error: …`` lines and exit codes. Where arq raises a
builtin or redis-py exception for the same mistake, runner's exception is also an instance of that class, so arq
code's ``except`` clauses keep working.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any


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


class InvalidRedisUrl(ConfigError, RuntimeError):
    """A Redis URL has an unknown scheme or a port or database that is not a number."""

    default_message = "The Redis URL is invalid; use redis://host:port/db."


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
    """A job could not run: expired, unknown function, too many tries, aborted before it started.

    Two are equal when their arguments are, as in arq, so a failure read back from Redis compares equal to the one
    a test expects.
    """

    default_message = "The job could not be executed."

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JobExecutionFailed):
            return self.args == other.args
        return False

    def __hash__(self) -> int:
        return hash((JobExecutionFailed, self.args))


class RedisUnavailable(RunnerError, ConnectionError):
    """Redis could not be reached after every configured retry.

    It is the builtin ``ConnectionError`` and, once the engine has loaded redis-py, redis-py's ``ConnectionError``
    too (``adopt_redis_errors``), so ``except RedisError`` catches it, as it catches what arq re-raises.
    """

    default_message = "Redis could not be reached; check the URL and that the server is running."


class AuthenticationFailed(RedisUnavailable):
    """Redis refused the username or password; not retried, since waiting does not fix it."""

    default_message = "Redis refused the credentials; check the password and the username."


class PoolExhausted(RunnerError, ConnectionError):
    """All ``max_connections`` connections of a pool stayed busy for ``pool_timeout`` seconds.

    Like ``RedisUnavailable`` it becomes redis-py's ``ConnectionError`` too, which is what redis-py (and so arq)
    raises for a pool with no free connection.
    """

    default_message = "Every connection of the pool stayed busy; raise max_connections or pool_timeout."


class InvalidArgument(RunnerError, ValueError, RuntimeError):
    """An engine call got a value it cannot use; arq raises RuntimeError or ValueError for these."""

    default_message = "An argument is invalid."


class NotACoroutine(RunnerError, TypeError, RuntimeError):
    """A job, cron job or hook is not an ``async def`` function; arq raises RuntimeError for this."""

    default_message = "Jobs must be defined with `async def`."


class EmbeddedServerError(RunnerError):
    """The embedded Valkey server could not be started, reached or stopped; the message says why and what to do."""

    default_message = "The embedded server could not be started."


class FailedJobs(RunnerError, RuntimeError):
    """``Worker.run_check()`` found jobs that failed."""

    def __init__(self, count: int, job_results: list[Any]) -> None:
        self.count = count
        self.job_results = job_results
        super().__init__(str(self))

    def __str__(self) -> str:
        # arq's text: the one failure's exception, or each failure's on its own line
        if self.count == 1 and self.job_results:
            return f"1 job failed {self.job_results[0].result!r}"
        return f"{self.count} jobs failed:\n" + "\n".join(repr(r.result) for r in self.job_results)

    def __repr__(self) -> str:
        return f"<{self}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.count, self.job_results)


class Retry(RunnerError, RuntimeError):
    """Raise inside a job to run it again, optionally after ``defer`` (seconds or a timedelta).

    The try still counts against ``max_tries``.
    """

    def __init__(self, defer: float | int | timedelta | None = None) -> None:
        # like arq's, it keeps the arguments it was called with and its text is its repr
        if isinstance(defer, timedelta):
            defer = defer.total_seconds()
        self.defer_score: int | None = None if defer is None else int(round(defer * 1000))

    def __reduce__(self) -> tuple[Any, ...]:
        # stored in results when retry_jobs is off: rebuild from the delay
        return type(self), (None if self.defer_score is None else self.defer_score / 1000,)

    def __repr__(self) -> str:
        return f"<Retry defer {(self.defer_score or 0) / 1000:.2f}s>"

    def __str__(self) -> str:
        return repr(self)


class RetryJob(RunnerError, RuntimeError):
    """Raise inside a job to put it back in the queue at its old score and run it again, as a job cancelled by a
    stop is (arq's ``RetryJob``). The try counts against ``max_tries``; with ``retry_jobs=False`` the job fails."""

    def __init__(self, *args: Any) -> None:
        # arq's RetryJob() carries no message, and a job that fails with it (retry_jobs off) stores it as raised
        Exception.__init__(self, *args)


def adopt_redis_errors(connection_error: type[Exception]) -> None:
    """Make ``RedisUnavailable`` and ``PoolExhausted`` (and so ``AuthenticationFailed``) redis-py's
    ``ConnectionError`` as well, as arq code's ``except`` clauses expect.

    The engine's connection module calls it with redis-py's class when it loads. This module does not import
    redis-py itself, so that commands which never talk to Redis (``runner --help``, ``runner validate``) do not
    pay for it; nothing raises these before the connection module is loaded.
    """
    for cls in (RedisUnavailable, PoolExhausted):
        if connection_error not in cls.__bases__:
            cls.__bases__ = (RunnerError, connection_error, ConnectionError)
