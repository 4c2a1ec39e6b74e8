"""Loading worker.toml: every source in its precedence order, validated into ``WorkerSettings`` with origins.

The sources themselves (files, environment, ``.env``, flags) are in sources.py; the models in models.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import ValidationError

from runner.config.models import WorkerSettings
from runner.config.problems import Problem, ProblemList, translate_error
from runner.config.sources import (
    DEFAULT_ORIGIN,
    DataSource,
    Layer,
    Origin,
    RunnerDotEnvSource,
    RunnerEnvSource,
    TomlSource,
    env_layer,
    has_path,
    redis_url_data,
    using_sources,
)
from runner.config.toml_file import KeyPath, TomlDocument, read_toml


@dataclass
class LoadedConfig:
    """A validated configuration with the origin of its values.

    Attributes:
        settings: the validated settings.
        document: the parsed worker.toml.
        layers: every source's data, highest precedence first (for origins).
    """

    settings: WorkerSettings
    document: TomlDocument
    layers: list[Layer]

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


def _problem_origin(layers: list[Layer], document: TomlDocument, path: KeyPath) -> Origin:
    for layer in layers:
        found = layer.origin(path)
        if found is not None:
            return found
    # nothing set this exact value (a missing key, a whole table): blame the source that wrote most of its path
    best: Layer | None = None
    best_depth = -1
    for layer in layers:
        depth = max((k for k in range(len(path) + 1) if has_path(layer.data, path[:k])), default=0)
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
    file_path = Path(path)
    document = read_toml(file_path, display_name or str(path))
    settings_cls = WorkerSettings
    flags = dict(flags or {})
    layers = _layers(file_path, document, flags)

    # flags travel as init arguments, so pydantic-settings' own init source keeps them first
    with using_sources([layer.source for layer in layers if layer.name != "command line"]):
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


def _layers(file_path: Path, document: TomlDocument, flags: dict[str, Any]) -> list[Layer]:
    """Every source's layer, highest precedence first (see sources.py)."""
    settings_cls = WorkerSettings
    dotenv_path = file_path.parent / ".env"
    dotenv_name = str(Path(document.display_name).parent / ".env") if file_path.parent != Path() else ".env"
    dotenv_name = dotenv_name.removeprefix("./")

    layers: list[Layer] = []
    if flags:
        layers.append(
            Layer("command line", flags, DataSource(settings_cls, flags), {(k,): Origin("command line") for k in flags})
        )
    layers.append(env_layer(RunnerEnvSource(settings_cls), document.data))
    env_url = redis_url_data(os.environ)
    layers.append(
        Layer(
            "env",
            env_url,
            DataSource(settings_cls, env_url),
            {("redis", "url"): Origin("env", None, "REDIS_URL")} if env_url else {},
        )
    )
    if dotenv_path.is_file():
        dotenv_source = RunnerDotEnvSource(settings_cls, dotenv_path, dotenv_name)
        layers.append(env_layer(dotenv_source, document.data))
        dotenv_url = redis_url_data(dotenv_values(dotenv_path))
        line = dotenv_source.line_numbers.get("REDIS_URL")
        layers.append(
            Layer(
                dotenv_name,
                dotenv_url,
                DataSource(settings_cls, dotenv_url),
                {("redis", "url"): Origin(dotenv_name, line, "REDIS_URL")} if dotenv_url else {},
            )
        )
    layers.append(Layer(document.display_name, document.data, TomlSource(settings_cls, document), {}))
    return layers


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for problem in problems:
        if str(problem) not in seen:
            seen.add(str(problem))
            out.append(problem)
    return out
