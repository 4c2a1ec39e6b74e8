"""The distribution is named runner-jobs on PyPI (``runner`` is someone else's), and every install line says so."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest

from runner._dist import DISTRIBUTION, install_hint

ROOT = Path(__file__).resolve().parent.parent
# what a user reads and may copy: docs, examples, the package's own messages, the build files
TEXT_FILES = [
    ROOT / "README.md",
    ROOT / "pyproject.toml",
    ROOT / "Makefile",
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "examples").rglob("*.py")),
    *sorted((ROOT / "runner").rglob("*.py")),
    *sorted((ROOT / "runner").rglob("*.toml")),
    *sorted((ROOT / "bench").glob("*.py")),
]
PIP_INSTALL = re.compile(r"pip install\s+(?:-[^\s]+\s+)*(['\"]?)([^\s'\"]+)\1")
# importlib.metadata and package_version() look a distribution up by its name, not by the import name
METADATA_LOOKUP = re.compile(r"""(?:version|distribution|metadata|package_version)\((?:[^()]*, *)?["']runner["']\)""")


def test_the_distribution_name_is_written_once_and_installed() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION == "runner-jobs"
    assert project["scripts"] == {"runner": "runner.cli:main"}  # the command keeps its name
    assert distribution(DISTRIBUTION).read_text("entry_points.txt") is not None
    assert install_hint("metrics", "prometheus-client") == (
        'pip install "runner-jobs[metrics]" (or just prometheus-client)'
    )


def test_the_extras_that_name_the_project_name_runner_jobs() -> None:
    """`"runner[dashboard]"` in an extra would make pip fetch PyPI's unrelated runner package for that extra."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, requirements in extras.items():
        for requirement in requirements:
            name = re.split(r"[\[=<>~!; ]", requirement, maxsplit=1)[0]
            assert name.lower() != "runner", f"[{extra}] requires {requirement!r}: use runner-jobs"


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_install_line_names_runner_jobs(path: Path) -> None:
    for target in (m.group(2) for m in PIP_INSTALL.finditer(path.read_text(encoding="utf-8"))):
        name = re.split(r"[\[=<>~!]", target, maxsplit=1)[0]
        assert name != "runner", f"{path.name}: `pip install {target}` installs PyPI's unrelated runner package"
    assert not METADATA_LOOKUP.search(path.read_text(encoding="utf-8")), (
        f"{path.name} looks up the distribution `runner`"
    )


def test_the_install_hints_name_runner_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner import metrics
    from runner.engine.serializers import get_serializer
    from runner.errors import ConfigError

    assert 'pip install "runner-jobs[metrics]"' in metrics.INSTALL_HINT
    monkeypatch.setitem(sys.modules, "msgpack", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=re.escape('pip install "runner-jobs[msgpack]" (or just msgpack)')):
        get_serializer("msgpack")
