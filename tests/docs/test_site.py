"""The documentation site builds with ``mkdocs build --strict``: no broken link, anchor or API reference."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_site_builds_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail('MkDocs is not installed in this venv: pip install -e ".[dev]" (it includes the docs extra)')
    # NO_MKDOCS_2_WARNING: Material's banner about MkDocs 2 says nothing about this site
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    site = tmp_path / "site"
    # every page in the nav was rendered, and the API reference holds the docstrings, not just headings
    for page in ("getting-started", "reference/worker-toml", "reference/cli", "reference/api", "benchmarks"):
        assert (site / page / "index.html").is_file(), page
    api = (site / "reference" / "api" / "index.html").read_text()
    assert "Runs jobs from one queue" in api  # Worker's docstring
    assert (site / "assets" / "compare.svg").is_file()


PAGES = sorted(page for page in (ROOT / "docs").rglob("*.md") if "_tools" not in page.parts)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_page_has_a_title_and_says_what_it_is_for(page: Path) -> None:
    # docs/_tools/PAGES.md: a `# Title`, then a paragraph before the first section
    lines = [line for line in page.read_text().splitlines() if not line.startswith("<!--")]
    assert lines[0].startswith("# "), f"{page.name}: the first line is the page's `# Title`"
    first_section = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    before_sections = "\n".join(lines[1:first_section])
    assert len(before_sections.split()) >= 12, f"{page.name}: say what the page is for before its first ## section"
