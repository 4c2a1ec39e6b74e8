"""Config problems: one line each, ``worker.toml:12: functions.send_email.timeout: must be greater than 0 (got -5)``.

Every check collects :class:`Problem` values instead of stopping at the first, so ``runner validate`` can report
them all at once; :class:`ProblemList` carries them as one ``ConfigError``.
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

# the one URL masking, shared with the engine; re-exported for the config modules
from runner.engine.utils import mask_url as mask_url
from runner.errors import ConfigError

SECRET_KEYS = frozenset({"password", "signing_key"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration.

    Attributes:
        source: where the value came from: the worker.toml name, ``env RUNNER_MAX_JOBS``, ``.env``, a CLI flag.
        line: the 1-based line in ``source`` when it is a file, else None.
        path: the dotted path of the setting (``functions.send_email.timeout``), or "" for the whole file.
        message: what is wrong and, where possible, the fix.
        variable: the environment variable that set the value, when one did.
    """

    source: str
    line: int | None
    path: str
    message: str
    variable: str | None = None

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        if self.variable:
            where = f"{where} {self.variable}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "variable": self.variable,
            "path": self.path,
            "message": self.message,
        }


class ProblemList(ConfigError):
    """One or more problems with a configuration; ``str()`` is one line per problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "The configuration is invalid.")


def show_value(value: Any, key: str = "") -> str:
    """A short TOML-looking rendering of a bad value for a message (secrets and URL passwords masked)."""
    if key in SECRET_KEYS:
        return '"***"'
    if isinstance(value, str) and "://" in value:
        value = mask_url(value)
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """The valid name nearest to ``name`` (a misspelling), or None when nothing is close."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_key_message(name: str, choices: Iterable[str]) -> str:
    options = sorted(choices)
    near = suggest(name, options)
    if near:
        return f"unknown key; did you mean `{near}`?"
    return f"unknown key; valid keys are: {', '.join(options)}"


def _model_fields_at(root: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The field names of the model that owns ``loc[-1]`` (to suggest a name for an unknown key)."""
    current: Any = root
    for part in loc[:-1]:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return []
            current = info.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    # Optional[X] / Annotated[X, ...] / X | Y: prefer the first BaseModel member, the only part with keys
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        for arg in get_args(tp):
            inner = _unwrap(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
            if get_origin(inner) in (dict, list):
                return inner
        return tp
    if hasattr(tp, "__metadata__"):
        return _unwrap(get_args(tp)[0])
    return tp


# union members pydantic puts in an error's loc; they are not part of the user's key path
TAGS = frozenset({"name", "paths", "int", "list[int]", "str"})


def clean_loc(loc: Sequence[str | int]) -> tuple[str, ...]:
    out: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, str) and part in TAGS and index > 0 and loc[0] == "serializer":
            continue
        out.append(str(part))
    return tuple(out)


def translate_error(root: type[BaseModel], error: Any) -> tuple[tuple[str, ...], str]:
    """A pydantic error as ``(key path, message)`` in the house phrasing."""
    loc = clean_loc(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    key = loc[-1] if loc else ""
    got = show_value(error.get("input"), key)
    messages = {
        "missing": "is required",
        "int_parsing": f"must be an integer (got {got})",
        "int_type": f"must be an integer (got {got})",
        "int_from_float": f"must be a whole number (got {got})",
        "float_parsing": f"must be a number (got {got})",
        "float_type": f"must be a number (got {got})",
        "bool_parsing": f"must be true or false (got {got})",
        "bool_type": f"must be true or false (got {got})",
        "string_type": f"must be a string (got {got})",
        "list_type": f"must be a list (got {got})",
        "dict_type": f"must be a table (got {got})",
        "model_type": f"must be a table (got {got})",
        "model_attributes_type": f"must be a table (got {got})",
        "greater_than": f"must be greater than {ctx.get('gt')} (got {got})",
        "greater_than_equal": f"must be at least {ctx.get('ge')} (got {got})",
        "less_than_equal": f"must be at most {ctx.get('le')} (got {got})",
        "less_than": f"must be less than {ctx.get('lt')} (got {got})",
        "string_too_short": f"must not be empty (got {got})",
    }
    if kind == "extra_forbidden":
        return loc, unknown_key_message(key, _model_fields_at(root, loc))
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", '"')
        return loc, f"must be one of {expected} (got {got})"
    if kind in messages:
        return loc, messages[kind]
    message = str(error.get("msg", "is invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return loc, message
