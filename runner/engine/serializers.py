"""Job and result serializers, chosen by name.

A serializer is a pair ``(dumps, loads)`` of ``dict -> bytes`` and ``bytes -> dict``; every producer and worker of
a queue must use the same pair.  ``pickle`` is the default because it is what arq writes.  ``json`` and ``msgpack``
cannot carry arbitrary Python objects, so exceptions stored in results are encoded as a small tagged mapping and
rebuilt as the builtin exception when the name is one, otherwise as ``JobExecutionFailed`` naming the original type.
"""

from __future__ import annotations

import builtins
import json
import pickle
from collections.abc import Callable
from typing import Any

from runner.errors import ConfigError, JobExecutionFailed

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
            'The "msgpack" serializer needs the msgpack package; install it with: pip install "runner[msgpack]".'
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
