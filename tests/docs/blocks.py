"""The fenced code blocks of the documentation pages, and what the tests do with each kind.

How a page's block is treated (tests/docs/test_examples.py):

* ```` ```python ```` runs as a script, from a scratch directory holding the page's files so far; it must exit 0.
  When its ``print(…)`` lines end in ``# → text``, what it prints must be those texts, line by line.
* ```` ```python title="tasks.py" ```` (any title) is a file of the page: written into the scratch directory for the
  blocks after it, not run by itself. A `` ```toml title="worker.toml" `` block is a file too, and is checked with
  ``runner validate`` (imports included) once the page's files are written.
* ```` ```toml ```` without a title is a fragment of a worker.toml: it must parse and load (keys, types, values).
* ```` ```console ```` lines that start with ``runner`` (or ``$ runner``) must parse with the real CLI: the
  commands and every option exist.
* ```` ```yaml ```` must parse; an ```` ```ini ```` block (a systemd unit) has no comment after a value.
* ```` ```diff title="app/worker.py" ```` changes that file of the page: its ``-`` lines, together, become its ``+``
  lines, for the blocks after it.
* ```` ```text ````, ```` ```diff ```` without a title, ```` ```bash ```` are shown, not run.

A block preceded by ``<!-- docs-test: skip: <why> -->`` is not run; the reason is required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# generated from the code (tests/docs/test_reference.py checks them instead)
GENERATED = {DOCS / "reference" / "worker-toml.md", DOCS / "reference" / "cli.md"}

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M
)
_TITLE = re.compile(r'title="([^"]+)"')
_SKIP = re.compile(r"<!--\s*docs-test:\s*skip(?::\s*(?P<why>.*?))?\s*-->\s*\n\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    title: str | None
    body: str
    skip: str | None  # the reason given, "" when the marker has none; None when the block is not skipped

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """README.md and every page of docs/ whose blocks are examples (not the generated references)."""
    found = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    return [page for page in found if page not in GENERATED and "_tools" not in page.parts]


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        indent = match.group("indent")
        body = "".join(line.removeprefix(indent) + "\n" for line in match.group("body").splitlines())
        title = _TITLE.search(match.group("attrs"))
        skip = _SKIP.search(text[: match.start()])
        found.append(
            Block(
                page=page,
                line=text.count("\n", 0, match.start()) + 1,
                lang=match.group("lang"),
                title=title.group(1) if title else None,
                body=body,
                skip=(skip.group("why") or "") if skip else None,
            )
        )
    return found


def runner_commands(block: Block) -> list[str]:
    """The ``runner …`` command lines of a console block, prompts and trailing comments removed."""
    commands = []
    for raw in block.body.splitlines():
        line = raw.strip().removeprefix("$ ")
        if line.startswith("runner "):
            commands.append(line)
    return commands


def expected_output(block: Block) -> list[str] | None:
    """The ``# → text`` of each ``print(…)`` line, or None when the block promises no output."""
    shown = [line.partition("# → ")[2] for line in block.body.splitlines() if "print(" in line and "# → " in line]
    return shown or None
