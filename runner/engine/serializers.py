"""Job and result serializers, chosen by name, and signed payloads.

A serializer is a pair ``(dumps, loads)`` of ``dict -> bytes`` and ``bytes -> dict``; every producer and worker of
a queue must use the same pair.  ``pickle`` is the default because it is what arq writes.  ``json`` and ``msgpack``
cannot carry arbitrary Python objects, so exceptions stored in results are encoded as a small tagged mapping and
rebuilt as the builtin exception when the name is one, otherwise as ``JobExecutionFailed`` naming the original type.

Decoding a pickle runs whatever code the payload names, so anyone who can write to the queue's Redis can run code
on its workers. ``sign_serializer`` closes that: every payload carries an HMAC of its bytes under a key only the
queue's producers and workers hold, and a payload without a valid one is refused before a byte of it is decoded.
Code that only reads jobs (``runner jobs``, ``queued_jobs()``, ``Job.result()``) decodes plain pickles with
``safe_pickle.safe_loads``, which runs nothing; ``reading_deserializer`` picks it.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import hmac
import json
import pickle
from collections.abc import Callable, Collection
from typing import Any

from runner._dist import install_hint
from runner.engine.safe_pickle import safe_loads
from runner.errors import ConfigError, DeserializationError, JobExecutionFailed

Serializer = Callable[[dict[str, Any]], bytes]
Deserializer = Callable[[bytes], dict[str, Any]]

_EXC_TAG = "__exception__"


def _exception_to_dict(exc: BaseException) -> dict[str, Any]:
    return {_EXC_TAG: type(exc).__name__, "message": str(exc)}


def _exception_from_dict(data: dict[str, Any]) -> BaseException:
    name, message = data[_EXC_TAG], data.get("message", "")
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            return cls(message) if message else cls()
        except Exception:  # an exotic builtin signature
            pass
    if name == "CancelledError":
        import asyncio

        return asyncio.CancelledError(message)
    return JobExecutionFailed(f"{name}: {message}" if message else name)


def _encode_extra(obj: Any) -> Any:
    """What json and msgpack cannot carry themselves: exceptions (tagged) and sets (as lists)."""
    if isinstance(obj, BaseException):
        return _exception_to_dict(obj)
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not serializable by this serializer")


def _json_hook(obj: dict[str, Any]) -> Any:
    return _exception_from_dict(obj) if _EXC_TAG in obj else obj


def json_dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, default=_encode_extra, separators=(",", ":")).encode()


def json_loads(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw, object_hook=_json_hook)
    return value


def pickle_dumps(data: dict[str, Any]) -> bytes:
    return pickle.dumps(data)


def pickle_loads(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = pickle.loads(raw)
    return value


def _msgpack_pair() -> tuple[Serializer, Deserializer]:
    try:
        import msgpack
    except ImportError:
        raise ConfigError(
            'The "msgpack" serializer needs the msgpack package; '
            f"install it with: {install_hint('msgpack', 'msgpack')}."
        ) from None

    def dumps(data: dict[str, Any]) -> bytes:
        packed: bytes = msgpack.packb(data, default=_encode_extra, use_bin_type=True)
        return packed

    def loads(raw: bytes) -> dict[str, Any]:
        value: dict[str, Any] = msgpack.unpackb(raw, raw=False, object_hook=_json_hook, strict_map_key=False)
        return value

    return dumps, loads


SERIALIZER_NAMES = ("pickle", "json", "msgpack")


def get_serializer(name: str) -> tuple[Serializer, Deserializer]:
    """The ``(dumps, loads)`` pair registered under ``name``: "pickle", "json" or "msgpack".

    Raises:
        ConfigError: the name is unknown, or msgpack is not installed.
    """
    if name == "pickle":
        return pickle_dumps, pickle_loads
    if name == "json":
        return json_dumps, json_loads
    if name == "msgpack":
        return _msgpack_pair()
    raise ConfigError(f'Unknown serializer "{name}"; choose one of: {", ".join(SERIALIZER_NAMES)}.')


# -- signed payloads --------------------------------------------------------------------------------------------------

# b"\x00" starts no pickle, JSON or msgpack document, so a signed payload can never be mistaken for a plain one
SIGNED_PREFIX = b"\x00runner-hmac-sha256:"
_DIGEST_BYTES = 32
MIN_KEY_BYTES = 32


def sign_serializer(
    key: str | bytes, dumps: Serializer | None = None, loads: Deserializer | None = None
) -> tuple[Serializer, Deserializer]:
    """A ``(dumps, loads)`` pair that signs every payload with HMAC-SHA256 under ``key`` and refuses others.

    ``loads`` checks the signature before it decodes anything: an unsigned payload, or one signed with another
    key, raises ``DeserializationError`` and is never unpickled, so a worker fails such a job instead of running
    it. Every producer and worker of the queue needs the same key. arq cannot read signed payloads.

    Args:
        key: at least 32 bytes (a str is taken as UTF-8), e.g. ``secrets.token_hex(32)``; keep it in the
            environment, never in a file under version control.
        dumps, loads: the pair to sign (default pickle).

    Raises:
        ValueError: the key is shorter than 32 bytes.
    """
    secret = key.encode() if isinstance(key, str) else bytes(key)
    if len(secret) < MIN_KEY_BYTES:
        raise ValueError(f"a signing key needs at least {MIN_KEY_BYTES} bytes (got {len(secret)})")
    inner_dumps = dumps or pickle_dumps
    inner_loads = loads or pickle_loads

    def signed_dumps(data: dict[str, Any]) -> bytes:
        body = inner_dumps(data)
        return SIGNED_PREFIX + hmac.digest(secret, body, hashlib.sha256) + body

    def signed_loads(raw: bytes) -> dict[str, Any]:
        start = len(SIGNED_PREFIX) + _DIGEST_BYTES
        if not raw.startswith(SIGNED_PREFIX) or len(raw) < start:
            raise DeserializationError("the payload is not signed; this queue only takes signed payloads")
        body = raw[start:]
        if not hmac.compare_digest(raw[len(SIGNED_PREFIX) : start], hmac.digest(secret, body, hashlib.sha256)):
            raise DeserializationError("the payload's signature does not match this queue's signing key")
        return inner_loads(body)

    return signed_dumps, signed_loads


def _safe_pickle_loads(raw: bytes, allow: Collection[str] = ()) -> dict[str, Any]:
    value: dict[str, Any] = safe_loads(raw, allow)
    return value


def reading_deserializer(deserializer: Deserializer | None, allow: Collection[str] = ()) -> Deserializer:
    """What code that only reads jobs and results decodes them with.

    Plain pickle (the default) becomes ``safe_pickle.safe_loads``, which imports and calls nothing but plain data
    and the modules in ``allow``; any other deserializer, a signed one included, is used as it is.
    """
    if deserializer is None or deserializer is pickle.loads or deserializer is pickle_loads:
        return functools.partial(_safe_pickle_loads, allow=tuple(allow))
    return deserializer
