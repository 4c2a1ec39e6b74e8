"""Every code example of the README and the docs is run or checked, as tests/docs/blocks.py says per kind."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

from runner import embedded
from runner.cli import cli
from runner.config import ProblemList, load_settings
from tests.docs.blocks import ROOT, Block, blocks, expected_output, pages, runner_commands

SHOWN_ONLY = {"text", "diff", "bash", "sh", ""}
RUN_TIMEOUT = 90.0


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


ALL_PAGES = pages()


def clean_env(scratch: Path) -> dict[str, str]:
    # a reader's shell has none of the suite's settings; the page's files are importable, as from its directory
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_") and k != "REDIS_URL"}
    env["PYTHONPATH"] = str(scratch)
    return env


def run_script(block: Block, scratch: Path, index: int) -> None:
    script = scratch / f"_example_{index}.py"
    script.write_text(block.body)
    proc = subprocess.Popen(
        [sys.executable, script.name], cwd=scratch, env=clean_env(scratch),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the example and whatever it started, by its own session id
        out, err = proc.communicate()
        pytest.fail(f"{block.where}: the example did not finish in {RUN_TIMEOUT:.0f}s:\n{out}\n{err}")
    assert proc.returncode == 0, f"{block.where}: the example exited with {proc.returncode}:\n{out}\n{err}"
    expected = expected_output(block)
    if expected is not None:
        assert out.splitlines() == expected, f"{block.where}: the example printed other lines than its # → comments"


def validate_file(block: Block, scratch: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runner.cli", "validate", block.title or "worker.toml"],
        cwd=scratch, env=clean_env(scratch), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{block.where}: runner validate {block.title}:\n{done.stdout}{done.stderr}"


def apply_diff(block: Block, target: Path) -> None:
    """A one-hunk diff of a file shown earlier on the page: its - lines, together, become its + lines."""
    lines = block.body.splitlines()
    removed = "".join(line[1:] + "\n" for line in lines if line.startswith("-"))
    added = "".join(line[1:] + "\n" for line in lines if line.startswith("+"))
    text = target.read_text() if target.exists() else ""
    assert removed and removed in text, f"{block.where}: the lines this diff removes are not in {target.name}"
    target.write_text(text.replace(removed, added, 1))


def load_fragment(block: Block, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tomllib.loads(block.body)  # a TOML error names the block before the models get to see it
    for name in list(os.environ):
        if name.startswith("RUNNER_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    fragment = scratch / "_fragment" / "worker.toml"
    fragment.parent.mkdir(exist_ok=True)
    fragment.write_text(block.body)
    try:
        load_settings(fragment)
    except ProblemList as problems:
        pytest.fail(f"{block.where}: this worker.toml fragment does not load:\n{problems}")


def command_words(line: str) -> list[str]:
    """One shell line's words up to the first redirection or chaining operator."""
    words = []
    for word in shlex.split(line, comments=True):
        if word in ("&&", "||", "|", ";", ">", ">>", "2>&1", "&"):
            break
        words.append(word)
    return words


def parse_command(block: Block, line: str) -> None:
    """The line parses with the real click commands: every subcommand and option exists."""
    words = command_words(line)[1:]
    command: click.Command = cli
    ctx = cli.make_context("runner", [], resilient_parsing=True)
    path = ["runner"]
    while isinstance(command, click.Group) and words:
        # a group's own arguments come before its subcommand (runner jobs WORKER_TOML list)
        positional = sum(1 for param in command.params if isinstance(param, click.Argument))
        while words and (words[0].startswith("-") or positional):
            if not words.pop(0).startswith("-"):
                positional -= 1
        if not words:
            break
        name = words.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{block.where}: `{line}`: {' '.join(path)} has no command {name!r}"
        path.append(name)
        ctx = sub.make_context(name, [], parent=ctx, resilient_parsing=True)
        command = sub
    # a context of its own that does not swallow usage errors (resilient parsing would ignore --no-such-flag)
    strict = click.Context(command, info_name=path[-1], parent=ctx.parent, resilient_parsing=False)
    try:
        command.make_parser(strict).parse_args(list(words))
    except click.UsageError as error:
        pytest.fail(f"{block.where}: `{line}` does not parse with `{' '.join(path)}`: {error.format_message()}")


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # an example that used embedded://DIR leaves a server lingering for a moment: stop each one now
    for lock in tmp_path.rglob("embedded.lock"):
        embedded.stop(lock.parent, timeout=10)


@pytest.mark.parametrize("page", ALL_PAGES, ids=page_id)
def test_examples_of_the_page(page: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = blocks(page)
    files_to_validate = []
    for index, block in enumerate(found):
        if block.skip is not None:
            assert block.skip, f"{block.where}: say why the example is not run: <!-- docs-test: skip: <why> -->"
            continue
        if block.title is not None and block.lang == "diff":
            apply_diff(block, scratch / block.title)
        elif block.title is not None:
            target = scratch / block.title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body)
            if block.lang == "toml" and Path(block.title).name == "worker.toml":
                files_to_validate.append(block)
        elif block.lang == "python":
            run_script(block, scratch, index)
        elif block.lang == "toml":
            load_fragment(block, scratch, monkeypatch)
        elif block.lang == "console":
            for line in runner_commands(block):
                parse_command(block, line)
        elif block.lang == "ini":
            # systemd (the ini blocks are unit files) reads # only at the start of a line: a trailing one is a value
            inline = [line for line in block.body.splitlines() if "=" in line and "#" in line.partition("=")[2]]
            assert not inline, f"{block.where}: systemd has no trailing comments; move them to their own line: {inline}"
        elif block.lang == "yaml":
            assert list(yaml.safe_load_all(block.body)), f"{block.where}: empty YAML"
        else:
            assert block.lang in SHOWN_ONLY, f"{block.where}: the tests do not know how to check a {block.lang} block"
    for block in files_to_validate:
        validate_file(block, scratch)


def test_the_pages_have_examples_to_check() -> None:
    # the fence pattern found blocks at all: a change in how pages are written must not check nothing
    counts = {page_id(page): len(blocks(page)) for page in ALL_PAGES}
    assert counts["README.md"] >= 5
    assert sum(counts.values()) > 45
