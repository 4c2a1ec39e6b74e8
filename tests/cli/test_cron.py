"""``runner next-cron``: exact tables, JSON, errors and the exit code on an unexplained disagreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli

WORKER_TOML = """\
timezone = "America/New_York"

[functions.report]
path = "tasks:report"

[cron.morning]
function = "report"
schedule = "30 1 * * *"

[cron.lunch]
function = "report"
hour = [9, 12]
minute = 12
tz = "Europe/London"
"""

EXPECTED = """\
cron.morning: "30 1 * * *" in America/New_York
    #  local time                      UTC                   croniter
    1  Sat 2024-11-02 01:30:00 -04:00  2024-11-02 05:30:00Z  agrees
    2  Sun 2024-11-03 01:30:00 -04:00  2024-11-03 05:30:00Z  agrees
    3  Mon 2024-11-04 01:30:00 -05:00  2024-11-04 06:30:00Z  intended
       croniter: Sun 2024-11-03 01:30:00 -05:00 (dst-repeated)
    4  Tue 2024-11-05 01:30:00 -05:00  2024-11-05 06:30:00Z  agrees
  dst-repeated: when clocks go back, a wall time that occurs twice runs once,
    at its first occurrence; croniter runs it again in the repeated hour

cron.lunch: hour={9,12} minute=12 second=0 microsecond=123456 in Europe/London
    #  local time                      UTC                   croniter
    1  Fri 2024-11-01 12:12:00 +00:00  2024-11-01 12:12:00Z  agrees
    2  Sat 2024-11-02 09:12:00 +00:00  2024-11-02 09:12:00Z  agrees
    3  Sat 2024-11-02 12:12:00 +00:00  2024-11-02 12:12:00Z  agrees
    4  Sun 2024-11-03 09:12:00 +00:00  2024-11-03 09:12:00Z  agrees
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "worker.toml"
    path.write_text(WORKER_TOML)
    return path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["next-cron", *args])
    return result.exit_code, result.stdout, result.stderr


def test_table_in_each_zone_and_utc_with_croniter_verdict(config: Path) -> None:
    code, out, err = _run("worker.toml", "--from", "2024-11-01T12:00", "--count", "4")
    assert (code, err) == (0, "")
    assert out == EXPECTED
    assert max(len(line) for line in out.splitlines()) <= 80  # fits a narrow terminal


def test_tz_option_sets_the_zone_of_jobs_without_one(config: Path) -> None:
    code, out, _ = _run("worker.toml", "--from", "2024-06-01T00:00:00+00:00", "-n", "1", "--tz", "Asia/Kolkata")
    assert code == 0
    assert out.splitlines()[:3] == [
        'cron.morning: "30 1 * * *" in Asia/Kolkata',
        "    #  local time                      UTC                   croniter",
        "    1  Sun 2024-06-02 01:30:00 +05:30  2024-06-01 20:00:00Z  agrees",
    ]
    # a job's own tz still wins
    assert "cron.lunch: hour={9,12} minute=12 second=0 microsecond=123456 in Europe/London" in out


def test_json(config: Path) -> None:
    code, out, _ = _run("worker.toml", "--from", "2024-11-02T12:00Z", "-n", "2", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["ok"] is True
    assert document["from"] == "2024-11-02T12:00:00+00:00"
    morning = document["jobs"][0]
    assert (morning["name"], morning["schedule"], morning["tz"]) == ("morning", "30 1 * * *", "America/New_York")
    assert morning["runs"][1] == {
        "local": "2024-11-04T01:30:00-05:00",
        "utc": "2024-11-04T06:30:00+00:00",
        "croniter": "2024-11-03T01:30:00-05:00",
        "status": "intended",
        "kind": "dst-repeated",
        "reason": (
            "when clocks go back, a wall time that occurs twice runs once, at its first occurrence; "
            "croniter runs it again in the repeated hour"
        ),
        "error": None,
    }


def test_unexplained_disagreement_exits_1(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pretend the DST rule were not documented: the same run must then count as a failure
    monkeypatch.setattr("runner.config.cron_check.classify", lambda *args: None)
    code, out, err = _run("worker.toml", "--from", "2024-11-01T12:00", "--count", "4")
    assert code == 1
    assert "    3  Mon 2024-11-04 01:30:00 -05:00  2024-11-04 06:30:00Z  DIFFERS" in out.splitlines()
    assert "       croniter: Sun 2024-11-03 01:30:00 -05:00 (unexplained)" in out.splitlines()
    assert err == "1 run disagree with croniter for no documented reason; please report the schedule\n"


def test_bad_options_are_usage_errors(config: Path) -> None:
    code, _, err = _run("worker.toml", "--tz", "Mars/Olympus")
    assert code == 2
    assert err == 'Error: --tz: unknown time zone "Mars/Olympus"; use an IANA name like "Europe/London" or "UTC"\n'
    code, _, err = _run("worker.toml", "--from", "yesterday")
    assert code == 2
    assert err.splitlines()[-1] == (
        "Error: Invalid value for --from: 'yesterday' is not an ISO 8601 date-time such as 2024-06-01T08:00 "
        "or 2024-06-01T08:00+02:00"
    )


def test_bad_schedule_in_the_file(config: Path) -> None:
    config.write_text(WORKER_TOML.replace("30 1 * * *", "30 25 * * *"))
    code, out, err = _run("worker.toml")
    assert (code, out) == (1, "")
    assert err == 'Error: cron "30 25 * * *": hour 25 is out of range 0-23\n'


def test_no_cron_jobs(config: Path) -> None:
    config.write_text('[functions.report]\npath = "tasks:report"\n')
    assert _run("worker.toml") == (0, "worker.toml: no cron jobs\n", "")


def test_docs_example_is_real_output() -> None:
    readme = (Path(__file__).resolve().parents[2] / "docs" / "cron.md").read_text()
    command = "$ runner next-cron worker.toml --from 2024-11-01T12:00 --count 4\n"
    start = readme.index(command) + len(command)
    shown = readme[start : readme.index("```", start)]
    assert EXPECTED.startswith(shown)
    assert shown.count("\n") == 9
