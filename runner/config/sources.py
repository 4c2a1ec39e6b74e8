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

from dotenv import dotenv_values
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from runner.config.problems import Problem, ProblemList, translate_error
from runner.config.toml_file import KeyPath, TomlDocument, read_toml

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


class _Data(PydanticBaseSettingsSource):
    """A source whose values were read beforehand (so each is read once, and origins can be kept)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False  # pragma: no cover - __call__ is used

    def __call__(self) -> dict[str, Any]:
        return self.data


class TomlSource(_Data):
    """worker.toml, already parsed with the line of every key."""

    def __init__(self, settings_cls: type[BaseSettings], document: TomlDocument) -> None:
        super().__init__(settings_cls, document.data)
        self.document = document

    def origin(self, path: KeyPath) -> Origin | None:
        if not _has_path(self.data, path):
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


def _has_path(data: Any, path: KeyPath) -> bool:
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
class _Layer:
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
        return (init_settings, RunnerEnvSource(settings_cls), _Data(settings_cls, _redis_url_data(os.environ)))
    return (init_settings, *active)


@contextmanager
def _using(sources: list[PydanticBaseSettingsSource]) -> Iterator[None]:
    token = _ACTIVE.set(sources)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _redis_url_data(environ: Mapping[str, str | None]) -> dict[str, Any]:
    url = environ.get("REDIS_URL")
    return {"redis": {"url": url}} if url else {}


def _env_layer(source: RunnerEnvSource | RunnerDotEnvSource, file_data: dict[str, Any]) -> _Layer:
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
        if _has_path(data, path):
            var_paths[path] = source.origin_of_variable(variable)
    return _Layer(name, data, _Data(source.settings_cls, data), var_paths)


def _respell(path: KeyPath, file_data: dict[str, Any]) -> KeyPath:
    if len(path) >= 2 and path[0] in NAMED_TABLES and isinstance(file_data.get(path[0]), dict):
        for name in file_data[path[0]]:
            if name.lower() == path[1]:
                return (path[0], name, *path[2:])
    return path


@dataclass
class LoadedConfig:
    """A validated configuration with the origin of its values.

    Attributes:
        settings: the validated settings.
        document: the parsed worker.toml.
        layers: every source's data, highest precedence first (for origins).
    """

    settings: Any  # WorkerSettings; Any avoids an import cycle with models
    document: TomlDocument
    layers: list[_Layer]

    @property
    def directory(self) -> Path:
        return self.document.path.resolve().parent

    def origin(self, path: KeyPath) -> Origin:
        """Where the effective value at ``path`` came from (``default`` when no source set it)."""
        for layer in self.layers:
            found = layer.origin(path)
            if found is not None:
                return found
        return DEFAULT_ORIGIN


def _problem_origin(layers: list[_Layer], document: TomlDocument, path: KeyPath) -> Origin:
    for layer in layers:
        found = layer.origin(path)
        if found is not None:
            return found
    # nothing set this exact value (a missing key, a whole table): blame the source that wrote most of its path
    best: _Layer | None = None
    best_depth = -1
    for layer in layers:
        depth = max((k for k in range(len(path) + 1) if _has_path(layer.data, path[:k])), default=0)
        if depth > best_depth:
            best, best_depth = layer, depth
    if best is not None and not isinstance(best.source, TomlSource):
        found = best.touches(path[:best_depth])
        if found is not None:
            return found
    return Origin(document.display_name, document.line_of(path))


def load_settings(
    path: str | Path,
    *,
    flags: dict[str, Any] | None = None,
    display_name: str | None = None,
) -> LoadedConfig:
    """Read worker.toml at ``path`` with the environment, the ``.env`` beside it and ``flags`` on top.

    Args:
        path: the worker.toml file.
        flags: settings given on the command line (highest precedence), e.g. ``{"burst": True}``.
        display_name: how to name the file in messages; default ``path`` as given.

    Raises:
        ProblemList: the file cannot be read or parsed, or values are invalid; one problem per bad value.
    """
    from runner.config.models import WorkerSettings

    file_path = Path(path)
    document = read_toml(file_path, display_name or str(path))
    settings_cls = WorkerSettings
    flags = dict(flags or {})

    dotenv_path = file_path.parent / ".env"
    dotenv_name = str(Path(document.display_name).parent / ".env") if file_path.parent != Path() else ".env"
    dotenv_name = dotenv_name.removeprefix("./")

    layers: list[_Layer] = []
    if flags:
        layers.append(
            _Layer("command line", flags, _Data(settings_cls, flags), {(k,): Origin("command line") for k in flags})
        )
    layers.append(_env_layer(RunnerEnvSource(settings_cls), document.data))
    env_url = _redis_url_data(os.environ)
    layers.append(
        _Layer(
            "env",
            env_url,
            _Data(settings_cls, env_url),
            {("redis", "url"): Origin("env", None, "REDIS_URL")} if env_url else {},
        )
    )
    if dotenv_path.is_file():
        dotenv_source = RunnerDotEnvSource(settings_cls, dotenv_path, dotenv_name)
        layers.append(_env_layer(dotenv_source, document.data))
        dotenv_url = _redis_url_data(dotenv_values(dotenv_path))
        line = dotenv_source.line_numbers.get("REDIS_URL")
        layers.append(
            _Layer(
                dotenv_name,
                dotenv_url,
                _Data(settings_cls, dotenv_url),
                {("redis", "url"): Origin(dotenv_name, line, "REDIS_URL")} if dotenv_url else {},
            )
        )
    layers.append(_Layer(document.display_name, document.data, TomlSource(settings_cls, document), {}))

    # flags travel as init arguments, so pydantic-settings' own init source keeps them first
    with _using([layer.source for layer in layers if layer.name != "command line"]):
        try:
            settings = settings_cls(**flags)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                loc, message = translate_error(settings_cls, error)
                origin = _problem_origin(layers, document, loc)
                problems.append(Problem(origin.source, origin.line, ".".join(loc), message, origin.variable))
            problems.sort(key=lambda p: (p.source != document.display_name, p.line or 0))
            raise ProblemList(_unique(problems)) from None
    return LoadedConfig(settings=settings, document=document, layers=layers)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for problem in problems:
        if str(problem) not in seen:
            seen.add(str(problem))
            out.append(problem)
    return out
