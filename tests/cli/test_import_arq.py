"""``runner import-arq``: an arq-style settings class (duck-typed; arq is not needed) as worker.toml."""

from __future__ import annotations

import functools
import json
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from runner.config import WorkerSettings as RunnerSettings
from runner.config.arq_import import local_zone_name, translate_arq_settings
from tests.support.cli import clean_env, invoke


async def send_email(ctx: dict[str, Any], to: str) -> str:
    return to


async def report(ctx: dict[str, Any]) -> None:
    return None


async def startup(ctx: dict[str, Any]) -> None:
    return None


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def loads(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


@dataclass
class ArqFunction:  # the attributes of arq.worker.Function
    name: str
    coroutine: Any
    timeout_s: float | None = None
    keep_result_s: float | None = None
    keep_result_forever: bool | None = None
    max_tries: int | None = None


@dataclass
class ArqCronJob:  # the attributes of arq.cron.CronJob
    name: str
    coroutine: Any
    month: Any = None
    day: Any = None
    weekday: Any = None
    hour: Any = None
    minute: Any = None
    second: Any = 0
    microsecond: int = 123_456
    run_at_startup: bool = False
    unique: bool = True
    job_id: str | None = None
    timeout_s: float | None = None
    keep_result_s: float | None = None
    keep_result_forever: bool | None = None
    max_tries: int | None = None


@dataclass
class ArqRedisSettings:  # the fields of arq.connections.RedisSettings
    host: Any = "localhost"
    port: int = 6379
    unix_socket_path: str | None = None
    database: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    conn_timeout: int = 1
    conn_retries: int = 5
    conn_retry_delay: int = 1
    sentinel: bool = False
    sentinel_master: str = "mymaster"
    extra: dict[str, Any] = field(default_factory=dict)


class WorkerSettings:
    functions = [ArqFunction("send_email", send_email, timeout_s=30, max_tries=3), report]
    cron_jobs = [
        ArqCronJob("cron:report", report, weekday={"mon", "fri"}, hour=8, minute=0, run_at_startup=True),
        ArqCronJob("cron:odd", report, minute={15, 45}, microsecond=5),
    ]
    redis_settings = ArqRedisSettings(host="cache", port=6380, database=2, password="hunter2", conn_timeout=3)
    queue_name = "emails"
    max_jobs = 20
    job_timeout = timedelta(minutes=5)
    keep_result = 60
    poll_delay = 0.25
    timezone = ZoneInfo("Europe/Paris")
    on_startup = startup
    on_shutdown = staticmethod(lambda ctx: None)
    job_serializer = dumps
    job_deserializer = loads
    ctx = {"client": object()}
    custom_thing = 1


class PartialSerializer:
    functions = [send_email]
    job_serializer = functools.partial(json.dumps, indent=None)
    job_deserializer = json.loads


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)


def test_translation() -> None:
    out = translate_arq_settings(WorkerSettings)
    assert out.data == {
        "max_jobs": 20,
        "job_timeout": 300,
        "keep_result": 60,
        "poll_delay": 0.25,
        "timezone": "Europe/Paris",
        "serializer": {"dumps": "tests.cli.test_import_arq:dumps", "loads": "tests.cli.test_import_arq:loads"},
        "redis": {"url": "redis://cache:6380/2", "conn_timeout": 3},
        "hooks": {"on_startup": "tests.cli.test_import_arq:startup"},
        "functions": {
            "send_email": {"path": "tests.cli.test_import_arq:send_email", "timeout": 30, "max_tries": 3},
            "report": {"path": "tests.cli.test_import_arq:report"},
        },
        "cron": {
            "cron:report": {
                "function": "report",
                "weekday": [0, 4],
                "hour": 8,
                "minute": 0,
                "second": 0,
                "run_at_startup": True,
                "unique": True,
            },
            "cron:odd": {
                "function": "report",
                "minute": [15, 45],
                "second": 0,
                "run_at_startup": False,
                "unique": True,
            },
        },
        "queues": {"emails": {}},
    }
    assert out.notes == [
        "redis password: kept out of the file; set RUNNER_REDIS__PASSWORD in the environment",
        "on_shutdown: <function WorkerSettings.<lambda> at "
        + hex(id(WorkerSettings.on_shutdown))
        + "> cannot be imported by path; move it to module level",
        "cron job cron:odd: microsecond=5 (runner schedules to the second)",
        "ctx: a dict of Python objects; build it in an on_startup hook instead",
        "custom_thing: not a worker setting",
    ]


def test_output_validates_as_worker_toml() -> None:
    text = translate_arq_settings(WorkerSettings).toml("tests.cli.test_import_arq.WorkerSettings")
    data = tomllib.loads(text)
    parsed = RunnerSettings.model_validate(data)
    assert parsed.functions["send_email"].timeout == 30.0
    assert parsed.queue_names() == ["emails"]


def test_command_prints_toml_and_warnings() -> None:
    result = invoke("import-arq", "tests.cli.test_import_arq.WorkerSettings")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "# worker.toml generated by `runner import-arq tests.cli.test_import_arq.WorkerSettings`.\n"
        "# Not carried over (set these up by hand):\n"
        "#   - redis password: kept out of the file; set RUNNER_REDIS__PASSWORD in the environment\n"
    )
    assert "hunter2" not in result.output
    assert 'url = "redis://cache:6380/2"' in result.stdout
    assert "warning: not carried over: custom_thing: not a worker setting\n" in result.stderr


def test_partial_serializer_is_named() -> None:
    out = translate_arq_settings(PartialSerializer)
    assert out.notes == ["job_serializer/job_deserializer: not importable by path (a partial or a lambda?)"]


def test_colon_form_and_errors() -> None:
    assert invoke("import-arq", "tests.cli.test_import_arq:PartialSerializer").exit_code == 0
    result = invoke("import-arq", "tests.cli.test_import_arq.Nope")
    assert result.exit_code == 1
    assert result.stderr == 'Error: Attribute "Nope" not found in module "tests.cli.test_import_arq".\n'
    result = invoke("import-arq", "Settings")
    assert result.exit_code == 1
    assert result.stderr == ('Error: "Settings" must name a class in a module, e.g. "app.worker.WorkerSettings".\n')


class LocalCron:  # no timezone: arq runs these in the machine's local time
    functions = [report]
    cron_jobs = [ArqCronJob("cron:report", report, hour=8, minute=0)]


class NoCron:
    functions = [report]


def test_cron_in_local_time_keeps_its_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    result = invoke("import-arq", "tests.cli.test_import_arq.LocalCron")
    assert result.exit_code == 0, result.output
    assert 'timezone = "America/New_York"\n' in result.stdout
    note = (
        'timezone = "America/New_York": this machine\'s zone (TZ), as arq runs cron jobs in local time and runner '
        "in UTC; set the zone your arq workers ran in"
    )
    assert result.stdout.startswith(
        "# worker.toml generated by `runner import-arq tests.cli.test_import_arq.LocalCron`.\n"
        f"# Check these:\n#   - {note}\n"
    )
    assert result.stderr == f"note: {note}\n"
    # 08:00 in New York stays 08:00 in New York (13:00 or 12:00 UTC), not 08:00 UTC
    parsed = RunnerSettings.model_validate(tomllib.loads(result.stdout))
    assert parsed.timezone == "America/New_York"


def test_no_cron_no_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    out = translate_arq_settings(NoCron)
    assert "timezone" not in out.data
    assert out.assumptions == []


def test_local_zone_from_the_system(tmp_path: Path) -> None:
    zoneinfo_dir = tmp_path / "usr" / "share" / "zoneinfo" / "Europe"
    zoneinfo_dir.mkdir(parents=True)
    (zoneinfo_dir / "Paris").write_bytes(b"")
    link = tmp_path / "localtime"
    link.symlink_to(zoneinfo_dir / "Paris")
    missing = tmp_path / "timezone"
    assert local_zone_name({}, link, missing) == ("Europe/Paris", str(link))
    assert local_zone_name({"TZ": ":Asia/Kolkata"}, link, missing) == ("Asia/Kolkata", "TZ")
    missing_link = tmp_path / "nothing"
    (tmp_path / "timezone").write_text("Etc/UTC\n")
    assert local_zone_name({}, missing_link, tmp_path / "timezone") == ("UTC", str(tmp_path / "timezone"))
    assert local_zone_name({"TZ": "Not/AZone"}, link, missing) == (None, "TZ")


def test_an_unnamed_local_zone_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Not/AZone")
    out = translate_arq_settings(LocalCron)
    assert "timezone" not in out.data
    assert len(out.notes) == 1
    assert out.notes[0].startswith("timezone: arq evaluates cron schedules in local time (here UTC")
    assert out.notes[0].endswith('e.g. timezone = "Europe/Paris", or every cron job moves by the offset')


def test_functions_given_by_arq_dotted_paths_keep_their_arq_names() -> None:
    class Dotted:
        functions = ["tests.cli.test_import_arq.send_email", "tests.cli.test_import_arq:report"]

    out = translate_arq_settings(Dotted)
    assert out.data["functions"] == {
        # arq names a function given by "pkg.mod.fn" after the whole path; producers enqueue it by that name
        "tests.cli.test_import_arq.send_email": {"path": "tests.cli.test_import_arq:send_email"},
        "report": {"path": "tests.cli.test_import_arq:report"},
    }
    RunnerSettings.model_validate(out.data)
