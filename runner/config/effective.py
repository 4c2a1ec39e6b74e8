"""The effective configuration as TOML, secrets masked, optionally with the origin of every value."""

from __future__ import annotations

from typing import Any

import tomli_w

from runner.config.loading import LoadedConfig
from runner.config.problems import SECRET_KEYS, mask_url
from runner.config.toml_file import key_lines


def _clean(value: Any, key: str = "") -> Any:
    """Values TOML can hold: no None, no empty tables, whole floats as ints, secrets masked."""
    if isinstance(value, dict):
        out = {k: _clean(v, k) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if key in SECRET_KEYS:
        return "***"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def effective_data(loaded: LoadedConfig) -> dict[str, Any]:
    """The validated settings as plain TOML-ready data."""
    data = loaded.settings.model_dump(mode="python")
    password = loaded.settings.redis.password
    data["redis"]["password"] = "***" if password is not None else None
    cleaned: dict[str, Any] = _clean(data)
    return cleaned


def effective_toml(loaded: LoadedConfig, *, show_origin: bool = False) -> str:
    """The effective configuration written by tomli-w; with ``show_origin`` each value ends with ``# <origin>``."""
    text = tomli_w.dumps(effective_data(loaded))
    if not show_origin:
        return text
    by_line: dict[int, tuple[str, ...]] = {}
    for written, number in key_lines(text).items():
        if len(written) > len(by_line.get(number, ())):
            by_line[number] = written
    lines = text.splitlines()
    width = max((len(line) for line in lines if not line.startswith("[")), default=0)
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        key_path = by_line.get(number)
        if key_path is None or not line.strip() or line.startswith("["):
            out.append(line)
            continue
        out.append(f"{line.ljust(width)}  # {loaded.origin(key_path).label()}")
    return "\n".join(out) + "\n"
