"""worker.toml loading: models, durations, key lines, env/.env/REDIS_URL precedence, masking, engine objects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.config import ProblemList, build_redis_settings, build_workers, load_settings
from runner.config.build import queue_options
from runner.config.problems import mask_url
from runner.config.toml_file import key_lines
from runner.config.types import parse_duration
from runner.engine.functions import Function

TASKS = """
from typing import Any

async def send_email(ctx: dict[str, Any], to: str) -> str:
    return to

async def cleanup(ctx: dict[str, Any]) -> int:
    return 0

async def startup(ctx: dict[str, Any]) -> None:
    ctx["ready"] = True
"""

BASE = """\
max_jobs = 4

[redis]
url = "redis://redis.example:6379/2"

[functions.send_email]
path = "cfgtasks:send_email"
timeout = "30s"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("RUNNER_") or name.upper() == "REDIS_URL":
            monkeypatch.delenv(name)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cfgtasks.py").write_text(TASKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def write(project: Path, text: str, dotenv: str | None = None) -> Path:
    path = project / "worker.toml"
    path.write_text(text)
    if dotenv is not None:
        (project / ".env").write_text(dotenv)
    return path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30.0),
        (1.5, 1.5),
        ("30", 30.0),
        ("30s", 30.0),
        ("500ms", 0.5),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("2w", 1_209_600.0),
        ("1h 30m", 5400.0),
        ("-5s", -5.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h30", "five", True])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(text)


def test_key_lines_tables_dotted_and_inline() -> None:
    text = '''# comment
max_jobs = 3
serializer = { dumps = "a:b",
  loads = "c:d" }
[functions.send]
path = "x:y"
doc = """multi
line = 5
"""
a.b = 1
[[arr]]
k = 1
[[arr]]
k = 2
'''
    lines = key_lines(text)
    assert lines[("max_jobs",)] == 2
    assert lines[("serializer", "dumps")] == 3
    assert lines[("serializer", "loads")] == 4
    assert lines[("functions", "send")] == 5
    assert lines[("functions", "send", "path")] == 6
    assert ("line",) not in lines
    assert ("functions", "send", "line") not in lines
    assert lines[("functions", "send", "a", "b")] == 10
    assert lines[("functions", "send", "a")] == 10
    assert lines[("arr", "0", "k")] == 12
    assert lines[("arr", "1", "k")] == 14


def test_defaults_and_file_values(project: Path) -> None:
    loaded = load_settings(write(project, BASE))
    s = loaded.settings
    assert s.max_jobs == 4
    assert s.job_timeout == 300.0
    assert s.functions["send_email"].timeout == 30.0
    assert s.queue_names() == ["arq:queue"]
    assert loaded.origin(("max_jobs",)).label() == f"{project / 'worker.toml'}:1"
    assert loaded.origin(("max_tries",)).label() == "default"


# -- precedence, pair by pair ---------------------------------------------------------------------------------------


def test_env_beats_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_MAX_JOBS", "9")
    loaded = load_settings(write(project, BASE), display_name="worker.toml")
    assert loaded.settings.max_jobs == 9
    assert loaded.origin(("max_jobs",)).label() == "env RUNNER_MAX_JOBS"


def test_file_beats_default(project: Path) -> None:
    loaded = load_settings(write(project, "poll_delay = 2\n" + BASE))
    assert loaded.settings.poll_delay == 2.0


def test_flag_beats_env(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_BURST", "false")
    loaded = load_settings(write(project, BASE), flags={"burst": True})
    assert loaded.settings.burst is True
    assert loaded.origin(("burst",)).label() == "command line"


def test_flag_beats_file(project: Path) -> None:
    loaded = load_settings(write(project, "burst = true\n" + BASE), flags={"burst": False})
    assert loaded.settings.burst is False


def test_env_beats_dotenv(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_MAX_JOBS", "7")
    loaded = load_settings(write(project, BASE, dotenv="RUNNER_MAX_JOBS=5\n"))
    assert loaded.settings.max_jobs == 7


def test_dotenv_beats_file(project: Path) -> None:
    loaded = load_settings(write(project, BASE, dotenv="# jobs\nRUNNER_MAX_JOBS=5\n"), display_name="worker.toml")
    assert loaded.settings.max_jobs == 5
    assert loaded.origin(("max_jobs",)).label() == ".env:2 RUNNER_MAX_JOBS"


def test_nested_env_override(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_FUNCTIONS__SEND_EMAIL__TIMEOUT", "1m")
    monkeypatch.setenv("RUNNER_REDIS__CONN_RETRIES", "0")
    loaded = load_settings(write(project, BASE))
    assert loaded.settings.functions["send_email"].timeout == 60.0
    assert loaded.settings.functions["send_email"].path == "cfgtasks:send_email"
    assert loaded.settings.redis.conn_retries == 0


def test_env_matches_names_case_insensitively(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = BASE.replace("functions.send_email", "functions.sendEmail")
    monkeypatch.setenv("RUNNER_FUNCTIONS__SENDEMAIL__MAX_TRIES", "2")
    loaded = load_settings(write(project, text))
    assert loaded.settings.functions["sendEmail"].max_tries == 2
    assert loaded.origin(("functions", "sendEmail", "max_tries")).variable == "RUNNER_FUNCTIONS__SENDEMAIL__MAX_TRIES"


def test_redis_url_env_beats_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6380/1")
    loaded = load_settings(write(project, BASE))
    assert loaded.settings.redis.url == "redis://cache:6380/1"
    assert loaded.origin(("redis", "url")).label() == "env REDIS_URL"


def test_runner_redis_url_beats_redis_url(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6380/1")
    monkeypatch.setenv("RUNNER_REDIS__URL", "redis://primary:6379/3")
    loaded = load_settings(write(project, BASE))
    assert loaded.settings.redis.url == "redis://primary:6379/3"


def test_redis_url_in_dotenv(project: Path) -> None:
    loaded = load_settings(write(project, BASE, dotenv="REDIS_URL=redis://fromdotenv:6379/0\n"))
    assert loaded.settings.redis.url == "redis://fromdotenv:6379/0"


def test_password_from_env_not_in_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_REDIS__PASSWORD", "s3cret")
    loaded = load_settings(write(project, BASE))
    redis = build_redis_settings(loaded.settings.redis)
    assert redis.password == "s3cret"
    assert redis.host == "redis.example"
    assert redis.database == 2
    assert "s3cret" not in repr(loaded.settings)


def test_password_inside_redis_url(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://app:pw%40x@db.internal:6390/4")
    redis = build_redis_settings(load_settings(write(project, BASE)).settings.redis)
    assert (redis.username, redis.password, redis.host, redis.port, redis.database) == (
        "app",
        "pw@x",
        "db.internal",
        6390,
        4,
    )


def test_mask_url() -> None:
    assert mask_url("redis://user:pw@host:1/0") == "redis://user:***@host:1/0"
    assert mask_url("redis://:pw@host/0") == "redis://:***@host/0"
    assert mask_url("redis://host:1/0") == "redis://host:1/0"


def test_redis_options_reach_settings(project: Path) -> None:
    text = BASE.replace(
        'url = "redis://redis.example:6379/2"',
        'url = "rediss://h:7000/1"\nconn_timeout = "3s"\nconn_retries = 2\nmax_connections = 50\n'
        'sentinel = true\nsentinels = ["s1:26379", "s2:26380"]\nsentinel_master = "main"',
    )
    redis = build_redis_settings(load_settings(write(project, text)).settings.redis)
    assert redis.ssl is True
    assert redis.conn_timeout == 3.0
    assert redis.conn_retries == 2
    assert redis.max_connections == 50
    assert redis.sentinel
    assert redis.host == [("s1", 26379), ("s2", 26380)]
    assert redis.sentinel_master == "main"


def test_errors_report_every_bad_value(project: Path) -> None:
    text = BASE.replace("max_jobs = 4", "max_jobs = 0").replace('timeout = "30s"', "timeout = -1")
    text = 'job_timeout = "x"\n' + text
    with pytest.raises(ProblemList) as info:
        load_settings(write(project, text), display_name="worker.toml")
    assert [str(p) for p in info.value.problems] == [
        'worker.toml:1: job_timeout: must be a duration such as 30, "30s", "5m", "1h30m" or "1d" (got "x")',
        "worker.toml:2: max_jobs: must be greater than 0 (got 0)",
        "worker.toml:9: functions.send_email.timeout: must be greater than 0 (got -1)",
    ]


# -- engine objects ---------------------------------------------------------------------------------------------------

QUEUES = (
    BASE
    + """
[functions.cleanup]
path = "cfgtasks:cleanup"
max_tries = 1

[hooks]
on_startup = "cfgtasks:startup"

[cron.nightly]
function = "cleanup"
schedule = "0 3 * * *"
queue = "maintenance"

[queues.mail]
functions = ["send_email"]

[queues.maintenance]
functions = ["cleanup"]
max_jobs = 1
keep_result = 0
"""
)


def test_build_workers_one_per_queue(project: Path) -> None:
    settings = load_settings(write(project, QUEUES)).settings
    mail, maintenance = build_workers(settings)
    assert (mail.queue_name, maintenance.queue_name) == ("mail", "maintenance")
    assert list(mail.functions) == ["send_email"]
    assert isinstance(mail.functions["send_email"], Function)
    assert mail.functions["send_email"].timeout_s == 30.0
    assert set(maintenance.functions) == {"cleanup", "nightly"}
    assert mail.max_jobs == 4
    assert maintenance.max_jobs == 1
    assert maintenance.keep_result_s == 0.0
    assert mail.keep_result_s == 3600.0
    assert mail.on_startup is not None
    assert mail.on_startup.__name__ == "startup"
    assert not mail.handle_signals
    assert mail.redis_settings.database == 2
    assert [job.name for job in maintenance.cron_jobs] == ["nightly"]
    assert mail.cron_jobs == []


def test_build_workers_single_queue(project: Path) -> None:
    settings = load_settings(write(project, QUEUES)).settings
    (only,) = build_workers(settings, "maintenance")
    assert only.queue_name == "maintenance"
    with pytest.raises(Exception, match='Queue "nope" is not in the file; choose one of: mail, maintenance'):
        build_workers(settings, "nope")


def test_queue_overrides_from_env(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_QUEUES__MAIL__MAX_JOBS", "12")
    settings = load_settings(write(project, QUEUES)).settings
    assert queue_options(settings, "mail")["max_jobs"] == 12
    assert queue_options(settings, "maintenance")["max_jobs"] == 1


def test_serializer_by_name_and_pair(project: Path) -> None:
    settings = load_settings(write(project, 'serializer = "json"\n' + BASE)).settings
    (worker,) = build_workers(settings)
    assert worker.job_serializer is not None
    assert worker.job_serializer({"a": 1}) == b'{"a":1}'
    text = '\n[serializer]\ndumps = "pickle:dumps"\nloads = "pickle:loads"\n'
    settings = load_settings(write(project, BASE + text)).settings
    (worker,) = build_workers(settings)
    import pickle

    assert worker.job_serializer is pickle.dumps
    assert worker.job_deserializer is pickle.loads


def test_shards_reach_the_workers_and_the_pool_settings(project: Path) -> None:
    text = BASE.replace('url = "redis://redis.example:6379/0"', "").replace(
        'url = "redis://redis.example:6379/2"', 'url = "redis://redis.example:7000"\ncluster = true'
    )
    text += "\n[queues.hot]\nshards = 4\nmax_jobs = 8\n\n[queues.cold]\n"
    settings = load_settings(write(project, text)).settings
    assert settings.queue_shards() == {"hot": 4}
    assert build_redis_settings(settings.redis, shards=settings.queue_shards()).shards == {"hot": 4}
    hot, cold = build_workers(settings)
    assert hot.shards == 4 and [lane.queue_name for lane in hot.lanes] == ["hot", "hot:1", "hot:2", "hot:3"]
    assert [lane.max_jobs for lane in hot.lanes] == [2, 2, 2, 2]
    assert hot.redis_settings.shards == {"hot": 4}
    assert cold.shards == 1 and [lane.queue_name for lane in cold.lanes] == ["cold"]


def test_event_loop_reaches_every_worker(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(write(project, QUEUES)).settings
    assert settings.event_loop == "auto"
    assert [worker.event_loop for worker in build_workers(settings)] == ["auto", "auto"]
    settings = load_settings(write(project, 'event_loop = "asyncio"\n' + QUEUES)).settings
    assert [worker.event_loop for worker in build_workers(settings)] == ["asyncio", "asyncio"]
    monkeypatch.setenv("RUNNER_EVENT_LOOP", "uvloop")
    loaded = load_settings(write(project, 'event_loop = "asyncio"\n' + QUEUES), display_name="worker.toml")
    assert loaded.settings.event_loop == "uvloop"
    assert loaded.origin(("event_loop",)).label() == "env RUNNER_EVENT_LOOP"
