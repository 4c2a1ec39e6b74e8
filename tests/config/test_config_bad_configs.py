"""The corpus of broken worker.toml files and environments in tests/config/bad_configs/.

Each case is ``NAME.toml`` or ``NAME/worker.toml`` (with its ``.env``). Comment lines say how to run it and
what must come out (``expect`` and ``exit`` go last, so they do not move the lines the messages name):

    # env: RUNNER_MAX_JOBS=ten          an environment variable set for the run (repeatable)
    # command: start                    validate (default) or start
    # args: --queue nope                extra arguments
    # exit: 1                           the exit code
    # expect: NAME.toml:3: path: msg    the exact output line(s) (validate: stdout; start: stderr)

No case may print a traceback.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli

CORPUS = Path(__file__).parent / "bad_configs"


@dataclass
class Case:
    name: str
    path: str  # relative to CORPUS, as given on the command line
    env: dict[str, str] = field(default_factory=dict)
    command: str = "validate"
    args: list[str] = field(default_factory=list)
    exit_code: int | None = None
    expect: list[str] = field(default_factory=list)


def _read_case(file: Path) -> Case:
    rel = file.relative_to(CORPUS)
    case = Case(name=str(rel.parent) if rel.name == "worker.toml" else rel.stem, path=str(rel))
    for line in file.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# "):
            continue
        key, _, value = line[2:].partition(": ")
        if key == "env":
            name, _, val = value.partition("=")
            case.env[name] = val
        elif key == "command":
            case.command = value
        elif key == "args":
            case.args = shlex.split(value)
        elif key == "exit":
            case.exit_code = int(value)
        elif key == "expect":
            case.expect.append(value)
    return case


def _cases() -> list[Case]:
    files = sorted(CORPUS.glob("*.toml")) + sorted(CORPUS.glob("*/worker.toml"))
    return [_read_case(f) for f in files]


CASES = _cases()


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert all(case.expect and case.exit_code is not None for case in CASES), [
        case.name for case in CASES if not case.expect or case.exit_code is None
    ]


def run_case(case: Case, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    for name in list(os.environ):
        if name.upper().startswith("RUNNER_") or name.upper() == "REDIS_URL":
            monkeypatch.delenv(name)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(CORPUS)
    monkeypatch.syspath_prepend(str(CORPUS))
    # validate puts the file's directory on sys.path; already there, it is left alone (and restored after)
    monkeypatch.syspath_prepend(str((CORPUS / case.path).resolve().parent))
    result = CliRunner().invoke(cli, [case.command, case.path, *case.args], prog_name="runner")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_config(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    code, stdout, stderr = run_case(case, monkeypatch)
    assert "Traceback" not in stdout + stderr
    assert code == case.exit_code
    if case.command == "validate":
        assert stdout.splitlines() == case.expect
        assert stderr == f"{case.path}: {len(case.expect)} problem{'s' if len(case.expect) > 1 else ''}\n"
    else:
        assert stderr.splitlines() == case.expect
