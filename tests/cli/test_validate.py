"""``runner validate``: text and JSON reports, --no-import, exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.cli import clean_env, invoke, make_project

GOOD = """\
[functions.send_email]
path = "valtasks:send_email"

[functions.cleanup]
path = "valtasks:cleanup"

[cron.nightly]
function = "cleanup"
schedule = "0 3 * * *"
queue = "maintenance"

[queues.mail]
functions = ["send_email"]

[queues.maintenance]
functions = ["cleanup"]
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_clean_file(tmp_path: Path) -> None:
    make_project(tmp_path, GOOD, "valtasks")
    result = invoke("validate", "worker.toml")
    assert result.exit_code == 0
    assert result.stdout == (
        "worker.toml: OK (queue mail: 1 function, 0 cron jobs; queue maintenance: 1 function, 1 cron job)\n"
    )


def test_every_problem_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_MAX_JOBS", "lots")
    text = GOOD.replace('path = "valtasks:cleanup"', 'path = "valtasks:missing"\ntimout = 3').replace(
        '"0 3 * * *"', '"0 3 * *"'
    )
    make_project(tmp_path, text, "valtasks")
    result = invoke("validate", "worker.toml")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "worker.toml:6: functions.cleanup.timout: unknown key; did you mean `timeout`?",
        'env RUNNER_MAX_JOBS: max_jobs: must be an integer (got "lots")',
    ]
    assert result.stderr == "worker.toml: 2 problems\n"
    # once the schema is right, the deep checks run and report theirs, all at once
    monkeypatch.delenv("RUNNER_MAX_JOBS")
    (tmp_path / "worker.toml").write_text(text.replace("timout = 3\n", ""))
    result = invoke("validate", "worker.toml")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        'worker.toml:5: functions.cleanup.path: attribute "missing" not found in module "valtasks"',
        'worker.toml:9: cron.nightly.schedule: cron "0 3 * *": expected 5 fields (minute hour day-of-month month '
        "day-of-week) or 6 with seconds last, got 4",
    ]


def test_no_import_skips_modules(tmp_path: Path) -> None:
    make_project(tmp_path, GOOD.replace("valtasks:", "not_installed_anywhere:"), "valtasks")
    assert invoke("validate", "worker.toml").exit_code == 1
    result = invoke("validate", "worker.toml", "--no-import")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("worker.toml: OK")


def test_json_format(tmp_path: Path) -> None:
    make_project(tmp_path, GOOD.replace('["send_email"]', '["send_emails"]'), "valtasks")
    result = invoke("validate", "worker.toml", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "file": "worker.toml",
        "valid": False,
        "problems": [
            {
                "source": "worker.toml",
                "line": 13,
                "variable": None,
                "path": "queues.mail.functions",
                "message": 'unknown function "send_emails"; did you mean `send_email`?',
            }
        ],
        "warnings": [],  # a file with problems gets them fixed first
    }
    make_project(tmp_path, GOOD, "valtasks")
    result = invoke("validate", "worker.toml", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"file": "worker.toml", "valid": True, "problems": [], "warnings": [PICKLE]}


PICKLE = (
    'serializer "pickle" runs any code a job payload names when a worker decodes it, so whoever can write to this '
    "Redis can run code on the workers; sign the payloads (set RUNNER_SIGNING_KEY; arq cannot read signed jobs) or "
    'use serializer = "json" or "msgpack"'
)
KEY = "k" * 64


def test_pickle_is_named_as_the_risk_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path, GOOD, "valtasks")
    result = invoke("validate", "worker.toml")
    assert result.exit_code == 0  # a warning, not a failure: CI keeps passing
    assert result.stderr == f"worker.toml: warning: {PICKLE}\n"
    # signed payloads, or a serializer that runs no code, need no warning
    monkeypatch.setenv("RUNNER_SIGNING_KEY", KEY)
    assert invoke("validate", "worker.toml").stderr == ""
    monkeypatch.delenv("RUNNER_SIGNING_KEY")
    make_project(tmp_path, 'serializer = "json"\n' + GOOD, "valtasks")
    assert invoke("validate", "worker.toml").stderr == ""


def test_the_signing_key_comes_from_the_environment_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path, f'signing_key = "{KEY}"\n' + GOOD, "valtasks")
    result = invoke("validate", "worker.toml")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "worker.toml:1: signing_key: keep the key out of the file: set RUNNER_SIGNING_KEY in the environment (or in "
        "the .env file beside worker.toml, kept out of version control)"
    ]
    assert KEY not in result.output
    make_project(tmp_path, GOOD, "valtasks")
    monkeypatch.setenv("RUNNER_SIGNING_KEY", "short")
    result = invoke("validate", "worker.toml")
    assert result.stdout.splitlines() == [
        "env RUNNER_SIGNING_KEY: signing_key: must be at least 32 bytes long (got 5); make one with: "
        'python -c "import secrets; print(secrets.token_hex(32))"'
    ]
    shown = invoke("config", "worker.toml").stdout
    assert 'signing_key = "***"\n' in shown and "short" not in shown


def test_missing_file() -> None:
    result = invoke("validate", "nowhere.toml")
    assert result.exit_code == 1
    assert result.stdout == "nowhere.toml: file not found; create one with: runner init\n"


def test_usage_error_exits_2() -> None:
    result = invoke("validate")
    assert result.exit_code == 2
    assert "Missing argument 'WORKER_TOML'" in result.stderr


def test_cron_schedules_parse_and_agree_with_croniter(tmp_path: Path) -> None:
    text = GOOD.replace('schedule = "0 3 * * *"', 'schedule = "*/15 8-18 * * mon-fri"\ntz = "America/New_York"')
    text += '\n[cron.arq_style]\nfunction = "valtasks:cleanup"\nweekday = ["mon", 4]\nhour = [8, 20]\nminute = 30\n'
    make_project(tmp_path, text, "valtasks")
    result = invoke("validate", "worker.toml")
    assert result.exit_code == 0, result.output
    (tmp_path / "worker.toml").write_text(text.replace("minute = 30", "minute = 60"))
    result = invoke("validate", "worker.toml")
    assert result.stdout == (
        "worker.toml:23: cron.arq_style.minute: must be an integer from 0 to 59, or a list of them (got 60)\n"
    )


BROKEN_MODULE_TOML = """\
[hooks]
on_startup = "synerr:startup"

[functions.one]
path = "synerr:one"

[functions.two]
path = "synerr:two"

[functions.three]
path = "synerr:three"

[functions.fine]
path = "valtasks:send_email"
"""


def test_a_module_with_a_syntax_error_is_reported_once(tmp_path: Path) -> None:
    make_project(tmp_path, BROKEN_MODULE_TOML, "valtasks")
    (tmp_path / "synerr.py").write_text("async def one(ctx):\n    return (1,\n\nasync def two(ctx): ...\n")
    result = invoke("validate", "worker.toml")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        'worker.toml:5: functions.one.path: module "synerr" has a syntax error at synerr.py:2: '
        "'(' was never closed; functions.two.path, functions.three.path, hooks.on_startup need it too"
    ]
    assert result.stderr == "worker.toml: 1 problem\n"
    # runner start checks the same way: one line, not one per import path
    started = invoke("start", "worker.toml", "--burst")
    assert started.exit_code == 3
    assert started.stderr.splitlines() == ["Error: " + result.stdout.splitlines()[0]]


def test_a_module_that_raises_is_reported_once_with_its_line(tmp_path: Path) -> None:
    make_project(tmp_path, BROKEN_MODULE_TOML, "valtasks")
    (tmp_path / "synerr.py").write_text("import os\n\nDSN = os.environ['NO_SUCH_VARIABLE_HERE']\n")
    result = invoke("validate", "worker.toml")
    assert result.stdout.splitlines() == [
        'worker.toml:5: functions.one.path: importing module "synerr" for "synerr:one" failed: '
        "KeyError: 'NO_SUCH_VARIABLE_HERE' (at synerr.py:3); functions.two.path, functions.three.path, "
        "hooks.on_startup need it too"
    ]


def test_uvloop_where_it_is_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path, 'event_loop = "uvloop"\n' + GOOD, "valtasks")
    assert invoke("validate", "worker.toml").exit_code == 0  # the suite's test extra installs uvloop
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as where the extra is not installed: the import fails
    fix = 'uvloop is not installed; install it with pip install "runner-jobs[uvloop]", or set "auto" to use it only '
    fix += "where it is installed"
    for args in (["validate", "worker.toml"], ["validate", "worker.toml", "--no-import"]):
        result = invoke(*args)
        assert (result.exit_code, result.stdout) == (1, f"worker.toml:1: event_loop: {fix}\n")
    (tmp_path / "worker.toml").write_text(GOOD)
    monkeypatch.setenv("RUNNER_EVENT_LOOP", "uvloop")
    result = invoke("validate", "worker.toml")
    assert (result.exit_code, result.stdout) == (1, f"env RUNNER_EVENT_LOOP: event_loop: {fix}\n")
    result = invoke("start", "worker.toml", "--burst")  # refused before it connects anywhere
    assert (result.exit_code, result.stderr) == (3, f"Error: env RUNNER_EVENT_LOOP: event_loop: {fix}\n")
    monkeypatch.setenv("RUNNER_EVENT_LOOP", "auto")
    assert invoke("validate", "worker.toml").exit_code == 0
