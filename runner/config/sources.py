"""Where settings come from, merged by pydantic-settings in one order, highest precedence first:

1. command-line flags (``runner start --burst``), passed as init arguments;
2. ``RUNNER_*`` environment variables, ``__`` between levels (``RUNNER_FUNCTIONS__SEND_EMAIL__TIMEOUT=30s``);
3. the conventional ``REDIS_URL`` environment variable (as ``redis.url``);
4. ``RUNNER_*`` lines of the ``.env`` file beside worker.toml;
5. a ``REDIS_URL`` line of that ``.env`` file;
6. worker.toml;
7. the defaults of :class:`runner.config.models.WorkerSettings`.

Each source is read once; its data is kept with the *origin* of every value (file and line, or variable name)
so errors and ``runner config --show-origin`` can say where a value came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from runner.config.problems import Problem, ProblemList
from runner.config.toml_file import KeyPath, TomlDocument

ENV_PREFIX = "RUNNER_"
NESTING = "__"
# tables whose keys are names the user chose; env names are case-insensitive, so they are matched to the file
NAMED_TABLES = ("functions", "cron", "queues")


@dataclass(frozen=True)
class Origin:
    """Where one value came from."""

    source: str
    line: int | None = None
    variable: str | None = None

    def label(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where} {self.variable}" if self.variable else where


DEFAULT_ORIGIN = Origin("default")


class DataSource(PydanticBaseSettingsSource):
    """A source whose values were read beforehand (so each is read once, and origins can be kept)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False  # pragma: no cover - __call__ is used

    def __call__(self) -> dict[str, Any]:
        return self.data


class TomlSource(DataSource):
    """worker.toml, already parsed with the line of every key."""

    def __init__(self, settings_cls: type[BaseSettings], document: TomlDocument) -> None:
        super().__init__(settings_cls, document.data)
        self.document = document

    def origin(self, path: KeyPath) -> Origin | None:
        if not has_path(self.data, path):
            return None
        return Origin(self.document.display_name, self.document.line_of(path))


class RunnerEnvSource(EnvSettingsSource):
    """``RUNNER_*`` variables of the process environment."""

    label = "env"

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, env_prefix=ENV_PREFIX, env_nested_delimiter=NESTING, case_sensitive=False)

    def variables(self) -> Mapping[str, str | None]:
        return self.env_vars

    def origin_of_variable(self, name: str) -> Origin:
        return Origin(self.label, None, _real_name(name, os.environ))


class RunnerDotEnvSource(DotEnvSettingsSource):
    """``RUNNER_*`` lines of the ``.env`` file; a misspelt ``RUNNER_`` name there is reported as an unknown key."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: Path, display_name: str) -> None:
        super().__init__(
            settings_cls,
            env_file=env_file,
            dotenv_filtering="match_prefix",
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=NESTING,
            case_sensitive=False,
        )
        self.display_name = display_name
        self.line_numbers = _dotenv_lines(env_file)

    def variables(self) -> Mapping[str, str | None]:
        return self.env_vars

    def origin_of_variable(self, name: str) -> Origin:
        real = _real_name(name, self.line_numbers)
        return Origin(self.display_name, self.line_numbers.get(real), real)


def _real_name(lowered: str, names: Mapping[str, Any]) -> str:
    for name in names:
        if name.lower() == lowered:
            return name
    return lowered.upper()


def _dotenv_lines(path: Path) -> dict[str, int]:
    lines: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return lines
    pattern = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        match = pattern.match(line)
        if match:
            lines.setdefault(match.group(1), number)
    return lines


def has_path(data: Any, path: KeyPath) -> bool:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def _match_names(data: dict[str, Any], file_data: dict[str, Any]) -> dict[str, Any]:
    """Give env keys under [functions]/[cron]/[queues] the spelling the file uses (env names are lowercased)."""
    for table in NAMED_TABLES:
        section = data.get(table)
        known = file_data.get(table)
        if not isinstance(section, dict) or not isinstance(known, dict):
            continue
        spelled = {name.lower(): name for name in known}
        data[table] = {spelled.get(key.lower(), key): value for key, value in section.items()}
    return data


@dataclass
class Layer:
    """One source's data with a way to tell the origin of any path in it."""

    name: str
    data: dict[str, Any]
    source: PydanticBaseSettingsSource
    var_paths: dict[KeyPath, Origin]  # for env sources: the path each variable sets

    def origin(self, path: KeyPath) -> Origin | None:
        if isinstance(self.source, TomlSource):
            return self.source.origin(path)
        for end in range(len(path), 0, -1):
            found = self.var_paths.get(path[:end])
            if found is not None:
                return found
        return None

    def touches(self, path: KeyPath) -> Origin | None:
        """The origin of any value at or below ``path`` (for errors about a whole table)."""
        for var_path, origin in self.var_paths.items():
            if var_path[: len(path)] == path:
                return origin
        return None


_ACTIVE: ContextVar[list[PydanticBaseSettingsSource] | None] = ContextVar("runner_config_sources", default=None)


def current_sources(
    settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource
) -> tuple[PydanticBaseSettingsSource, ...]:
    """The sources of the load in progress; outside :func:`load_settings`, flags and environment only."""
    active = _ACTIVE.get()
    if active is None:
        return (init_settings, RunnerEnvSource(settings_cls), DataSource(settings_cls, redis_url_data(os.environ)))
    return (init_settings, *active)


@contextmanager
def using_sources(sources: list[PydanticBaseSettingsSource]) -> Iterator[None]:
    token = _ACTIVE.set(sources)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def redis_url_data(environ: Mapping[str, str | None]) -> dict[str, Any]:
    url = environ.get("REDIS_URL")
    return {"redis": {"url": url}} if url else {}


def env_layer(source: RunnerEnvSource | RunnerDotEnvSource, file_data: dict[str, Any]) -> Layer:
    name = source.display_name if isinstance(source, RunnerDotEnvSource) else "env"
    try:
        data = _match_names(source(), file_data)
    except SettingsError as exc:
        field = re.search(r'field "([^"]+)"', str(exc))
        key = field.group(1) if field else ""
        origin = source.origin_of_variable(f"{ENV_PREFIX}{key}".lower())
        raise ProblemList(
            [
                Problem(
                    origin.source,
                    origin.line,
                    key,
                    f"must be a JSON object; or set one key with {origin.variable}__KEY=value",
                    origin.variable,
                )
            ]
        ) from None
    var_paths: dict[KeyPath, Origin] = {}
    prefix = ENV_PREFIX.lower()
    for variable in source.variables():
        if not variable.startswith(prefix):
            continue
        path = tuple(variable[len(prefix) :].split(NESTING))
        path = _respell(path, file_data)
        if has_path(data, path):
            var_paths[path] = source.origin_of_variable(variable)
    return Layer(name, data, DataSource(source.settings_cls, data), var_paths)


def _respell(path: KeyPath, file_data: dict[str, Any]) -> KeyPath:
    if len(path) >= 2 and path[0] in NAMED_TABLES and isinstance(file_data.get(path[0]), dict):
        for name in file_data[path[0]]:
            if name.lower() == path[1]:
                return (path[0], name, *path[2:])
    return path
