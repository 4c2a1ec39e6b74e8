"""What the prose of the docs says about a default, a limit or a timing is what the code does.

Each case names a page, the words it uses (whitespace-insensitive) and the value in the code the words describe.
When the code changes, the case fails and names the page to correct; when the page changes, it fails until the
case is moved with it. The generated references (worker.toml, CLI) need no case: they are made from the code.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest

from runner import RedisSettings, Worker, cron
from runner.cli import cli, exits, recycle, supervisor
from runner.config.models import CronConfig, RedisConfig, WorkerSettings
from runner.embedded import files as embedded_files
from runner.engine import client, connection, inspection as engine_inspect, keys, serializers
from runner.engine.cron import CronScheduler
from runner.engine.executors import default_threads
from runner.engine.lifecycle import Outage
from runner.engine.watchdog import LoopWatchdog
from runner.metrics import MetricsExporter

ROOT = Path(__file__).resolve().parents[2]


def default(function: Callable[..., Any], name: str) -> Any:
    return inspect.signature(function).parameters[name].default


def option(command_path: str, name: str) -> Any:
    """The default of an option of ``runner <command_path>``."""
    command: click.Command = cli
    for part in command_path.split():
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), part)
        assert found is not None, part
        command = found
    (param,) = [p for p in command.params if p.name == name]
    return param.default


def init_writes() -> list[str]:
    """The files ``runner init myworker`` writes, run in a temporary directory."""
    from click.testing import CliRunner

    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "myworker"
        done = CliRunner().invoke(cli, ["init", str(target)])
        assert done.exit_code == 0, done.output
        return sorted(path.name for path in target.iterdir())


def soak_defaults() -> tuple[Any, ...]:
    """bench/soak.py's defaults: jobs, seconds, workers, the range of pauses between kills, Redis kills, downtime."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import soak
        import soak_chaos
    finally:
        sys.path.remove(str(ROOT / "bench"))
    o = soak.parse([])
    # a kill comes kill_every × uniform(0.5, 1.5) after the one before
    assert "kill_every * self.rng.uniform(0.5, 1.5)" in inspect.getsource(soak_chaos)
    return (o.jobs, o.duration, o.workers, o.kill_every * 0.5, o.kill_every * 1.5, o.redis_restarts, o.redis_down)


def soak_fault_defaults() -> tuple[Any, ...]:
    """bench/soak.py's storms, stalls and freezes: how many, how long, against which socket timeout and lease."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import soak
        import soak_chaos
    finally:
        sys.path.remove(str(ROOT / "bench"))
    o = soak.parse([])
    storm_every = soak_chaos._STORM_KILL_EVERY_S
    return (o.storms, storm_every, o.storm, o.stalls, o.stall, o.socket_timeout, o.freezes, o.freeze, o.lease)


def outage_backoff_cap() -> float:
    """The longest pause between retries while Redis is unreachable, from ``Outage`` itself."""
    pauses: list[float] = []

    async def wait_for_stop(delay: float) -> None:
        pauses.append(delay)

    outage = Outage(SimpleNamespace(stopping=False, wait_for_stop=wait_for_stop), "redis://x")  # type: ignore[arg-type]
    outage.since = time.monotonic() - 3600  # an hour into an outage
    asyncio.run(outage.failed(ConnectionError("down")))
    return pauses[0]


@dataclass(frozen=True)
class Claim:
    page: str
    words: str
    actual: Callable[[], Any]
    expected: Any

    @property
    def id(self) -> str:
        return f"{self.page}: {self.words[:50]}"


def dashboard_numbers() -> dict[str, Any]:
    from runner.config.models import DashboardConfig
    from runner.engine import browse, presence, recent
    from runner.web import board, views

    return {
        "long": views.LONG,
        "budget": browse.SCAN_BUDGET,
        "sizes": (board.PAGE_SIZES[0], board.PAGE_SIZES[-1]),
        "presence": (presence.PRESENCE_INTERVAL_S, presence.PRESENCE_INTERVAL_S * presence.RECORD_LIFETIME_INTERVALS),
        "checked": (browse.FRONT_CHECKED, browse.NEAR_CHECKED),
        "runs": board.CRON_RUNS,
        "recent": recent.RECENT_PER_QUEUE,
        "refresh": DashboardConfig.model_fields["refresh"].default,
    }


CLAIMS = [
    Claim("dashboard.md", "Long values are cut at 2 000 characters", lambda: dashboard_numbers()["long"], 2000),
    Claim("dashboard.md", "after 2 000 jobs without enough matches", lambda: dashboard_numbers()["budget"], 2000),
    Claim("dashboard.md", "20 to 200 a page", lambda: dashboard_numbers()["sizes"], (20, 200)),
    Claim(
        "dashboard.md",
        "written every 5 seconds, gone 15 seconds after the worker is",
        lambda: dashboard_numbers()["presence"],
        (5.0, 15.0),
    ),
    Claim(
        "dashboard.md",
        "held at the front of the queue stays under 200 and the jobs due within a lease stay under 2 000",
        lambda: dashboard_numbers()["checked"],
        (200, 2000),
    ),
    Claim("dashboard.md", "its next five runs", lambda: dashboard_numbers()["runs"], 5),
    Claim("dashboard.md", "the last 1 000 per queue", lambda: dashboard_numbers()["recent"], 1000),
    Claim("dashboard.md", 'refresh = "5s"', lambda: dashboard_numbers()["refresh"], 5.0),
    # the lease and stopping
    Claim("guarantees.md", "`lease` (10 s by default", lambda: WorkerSettings.model_fields["lease"].default, 10.0),
    Claim("guarantees.md", "`lease` (10 s by default", lambda: default(Worker, "lease"), 10),
    Claim("python-api.md", "after at most `lease` seconds (10 by default)", lambda: default(Worker, "lease"), 10),
    Claim("migrating-from-arq.md", "within `lease` (10 s by default)", lambda: default(Worker, "lease"), 10),
    Claim(
        "guarantees.md",
        "`job_completion_wait` seconds (0 by default)",
        lambda: (default(Worker, "job_completion_wait"), WorkerSettings.model_fields["job_completion_wait"].default),
        (0, 0.0),
    ),
    Claim(
        "guarantees.md",
        "relaunches a child that dies after 0.5 s, doubling to 30 s while it keeps dying within 30 s of its start",
        lambda: (supervisor.BACKOFF_FIRST, supervisor.BACKOFF_MAX, supervisor.HEALTHY_AFTER),
        (0.5, 30.0, 30.0),
    ),
    Claim(
        "commands.md",
        "restarts a child that dies (after 0.5s, doubling up to 30s while it keeps dying)",
        lambda: (supervisor.BACKOFF_FIRST, supervisor.BACKOFF_MAX),
        (0.5, 30.0),
    ),
    Claim("guarantees.md", "a backoff of at most 2 s", outage_backoff_cap, 2.0),
    Claim(
        "guarantees.md",
        "`socket_timeout` per try (a runner `RedisSettings` field, 5 s by default",
        lambda: RedisSettings().socket_timeout,
        5,
    ),
    Claim(
        "commands.md",
        "Exit codes: `0` success / clean stop, `1` failure (including an invalid file for `validate`), `2` usage "
        "error, `3` could not start",
        lambda: (exits.EXIT_OK, exits.EXIT_FAILURE, exits.EXIT_USAGE, exits.EXIT_START),
        (0, 1, 2, 3),
    ),
    Claim(
        "commands.md",
        "runner init myworker # writes myworker/worker.toml, myworker/tasks.py, myworker/worker.schema.json",
        lambda: init_writes(),
        ["tasks.py", "worker.schema.json", "worker.toml"],
    ),
    Claim(
        "guarantees.md",
        "5 s by default; up to three tries;",
        lambda: 1 + connection._connection_kwargs(RedisSettings())["retry"].get_retries(),
        3,
    ),
    # cron
    Claim(
        "cron.md",
        "`max_tries` (default 1), `keep_result` (default 0)",
        lambda: (default(cron, "max_tries"), default(cron, "keep_result")),
        (1, 0),
    ),
    Claim(
        "cron.md",
        "`second` defaults to 0 and `microsecond` to arq's 123456",
        lambda: (default(cron, "second"), default(cron, "microsecond")),
        (0, 123_456),
    ),
    Claim(
        "cron.md",
        "enqueues every occurrence shortly (1 s) before it is due",
        lambda: default(CronScheduler, "lead"),
        1.0,
    ),
    Claim(
        "cron.md", "occurrences more than a minute late are dropped", lambda: default(CronScheduler, "max_late"), 60.0
    ),
    Claim("cron.md", "else **UTC**", lambda: cron(_a_cron_job, hour=1).zone(None), UTC),
    Claim(
        "cron.md",
        "`name` (default `cron:<function>`)",
        lambda: cron("tests.docs.test_claims:_a_cron_job", hour=1).name,
        "cron:_a_cron_job",
    ),
    Claim("cron.md", "`unique`", lambda: CronConfig.model_fields["unique"].default, True),
    Claim(
        "guarantees.md",
        "enqueues 10 000 jobs over a minute while it SIGKILLs a random one of 3 `runner start` processes every "
        "1.5–4.5 s (starting a new one each time) and SIGKILLs Redis (AOF, `appendfsync always`) twice, for 2 s each",
        lambda: soak_defaults(),
        (10_000, 60.0, 3, 1.5, 4.5, 2, 2.0),
    ),
    Claim(
        "guarantees.md",
        "two connection-kill storms (`CLIENT KILL` of every normal connection every 0.1 s for 1 s), two stalls of all "
        "the workers' traffic for 1 s (past their `socket_timeout` of 0.5 s) and two workers frozen with SIGSTOP for "
        "3.5 s (past their 2 s lease)",
        lambda: soak_fault_defaults(),
        (2, 0.1, 1.0, 2, 1.0, 0.5, 2, 3.5, 2.0),
    ),
    # the embedded server
    Claim(
        "embedded.md",
        "Two seconds after the last one has closed its pool or died",
        lambda: embedded_files.LINGER_S,
        2.0,
    ),
    Claim(
        "getting-started.md",
        "it stops by itself two seconds after the last process using it has gone",
        lambda: embedded_files.LINGER_S,
        2.0,
    ),
    Claim(
        "embedded.md", "checks those processes a few times a second", lambda: 1 / embedded_files.CHECK_INTERVAL_S, 4.0
    ),
    # operations
    Claim("operations.md", "(at most 50 unless `--limit N`", lambda: option("jobs list", "limit"), 50),
    Claim("operations.md", "redraws every 2 s like top", lambda: option("info", "interval"), 2.0),
    Claim(
        "operations.md", "queue depth, read from Redis every 5 s", lambda: default(MetricsExporter, "refresh_s"), 5.0
    ),
    Claim(
        "deployment.md",
        "the depth it reads from Redis every 5 seconds",
        lambda: default(MetricsExporter, "refresh_s"),
        5.0,
    ),
    Claim("cron.md", "`--count` defaults to 5", lambda: option("next-cron", "count"), 5),
    Claim("operations.md", "(kept an hour)", lambda: keys.stats_key_ttl_s // 3600, 1),
    Claim("migrating-from-arq.md", "(kept an hour)", lambda: keys.stats_key_ttl_s // 3600, 1),
    Claim(
        "operations.md",
        "outcomes per minute over the last five minutes",
        lambda: engine_inspect.STATS_WINDOW_MINUTES,
        5,
    ),
    # connections, enqueue, security (issue 14)
    Claim(
        "python-api.md",
        "(`RedisSettings(max_connections=...)` or `max_connections` under `[redis]`; 100 by default)",
        lambda: (RedisSettings().max_connections, connection.DEFAULT_MAX_CONNECTIONS),
        (None, 100),
    ),
    Claim(
        "python-api.md",
        "up to `pool_timeout` (10 s by default; `None` waits for ever)",
        lambda: (RedisSettings().pool_timeout, RedisConfig.model_fields["pool_timeout"].default),
        (10, 10.0),
    ),
    Claim(
        "guarantees.md",
        "keeps each call's answer for three socket timeouts and 5 s more (`runner:enqueued:<token>`, 20 s by default)",
        lambda: (client.enqueue_marker_ms(RedisSettings().socket_timeout), client.enqueue_marker_ms(1)),
        (20_000, 8_000),
    ),
    Claim("security.md", "It needs at least 32 bytes", lambda: serializers.MIN_KEY_BYTES, 32),
    Claim("guarantees.md", "a `max_tries = 1` job (cron's default)", lambda: default(cron, "max_tries"), 1),
    Claim(
        "security.md",
        "the directory is 0700 and its files 0600 whatever the umask",
        lambda: (embedded_files.PRIVATE_DIR, embedded_files.PRIVATE_FILE),
        (0o700, 0o600),
    ),
    Claim(
        "operations.md",
        "default an hour; `keep_result = 0` keeps",
        lambda: WorkerSettings.model_fields["keep_result"].default,
        3600.0,
    ),
    # executors and the loop watchdog
    Claim(
        "executors.md",
        "`loop_stall_threshold` (1 s by default; `0` turns it off)",
        lambda: (WorkerSettings.model_fields["loop_stall_threshold"].default, default(Worker, "loop_stall_threshold")),
        (1.0, 1.0),
    ),
    Claim(
        "executors.md",
        "A stall that lasts 30 s is reported while it lasts",
        lambda: default(LoopWatchdog, "long_stall_s"),
        30.0,
    ),
    Claim(
        "executors.md",
        "`threads` defaults to `max_jobs`",
        lambda: [default_threads(n) for n in (1, 10, 200)],
        [1, 10, 200],
    ),
    Claim(
        "executors.md",
        "on 2 cores that is 2; on 64 cores with the default `max_jobs = 10` it is 10, and with `max_jobs = 100` and "
        "`--processes 4`, 16 each",
        lambda: processes_on_cores(),
        (2, 10, 16, 10),
    ),
    Claim("executors.md", "(checked every second)", lambda: recycle.MEMORY_CHECK_S, 1.0),
]


def processes_on_cores() -> tuple[int, ...]:
    """``default_processes`` on a 2-core and a 64-core machine, and ``max_jobs``'s default that caps it."""
    from unittest import mock

    from runner.engine.executors import default_processes

    with mock.patch("runner.engine.executors.usable_cpus", return_value=2):
        two = default_processes(10)
    with mock.patch("runner.engine.executors.usable_cpus", return_value=64):
        sixty_four = default_processes(10), default_processes(100, 4)
    return (two, *sixty_four, default(Worker, "max_jobs"))


async def _a_cron_job(ctx: Any) -> None:
    """A cron job for the name claim."""


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_the_docs_say_what_the_code_does(claim: Claim) -> None:
    page = _normal((ROOT / "docs" / claim.page).read_text())
    assert _normal(claim.words) in page, f"docs/{claim.page} no longer says {claim.words!r}: move this case with it"
    assert claim.actual() == claim.expected, f"docs/{claim.page} says {claim.words!r}, which the code no longer does"


def test_every_runner_key_is_in_the_migration_table() -> None:
    # an arq user sharing a queue should know every key runner writes; the table lists them by prefix
    source = "".join(path.read_text() for path in (ROOT / "runner").rglob("*") if path.suffix in (".py", ".lua"))
    prefixes = {match.rsplit(":", 1)[0] for match in re.findall(r"(?<=[\"'])runner:[a-z_:]+:", source)}
    page = (ROOT / "docs" / "migrating-from-arq.md").read_text()
    listed = set(re.findall(r"^\| `(runner:[a-z_:]+):<", page, flags=re.M))
    assert prefixes, "no runner: key found in the source: the pattern above is stale"
    assert prefixes <= listed, f"docs/migrating-from-arq.md: keys missing from the table: {prefixes - listed}"


def problems_of(text: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    from runner.config import ProblemList, load_settings

    for name in [n for n in os.environ if n.startswith("RUNNER_") or n == "REDIS_URL"]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "worker.toml").write_text(text)
    with pytest.raises(ProblemList) as caught:
        load_settings(tmp_path / "worker.toml", display_name="worker.toml")
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "env", "quoted"),
    [
        (
            '[functions.a]\npath = "tasks:a"\n[redis]\nconn_timout = "1s"\n',
            {},
            "redis.conn_timout: unknown key; did you mean `conn_timeout`?",
        ),
        ("max_jobs = 2\n", {"RUNNER_MAX_JOBS": "ten"}, 'env RUNNER_MAX_JOBS: max_jobs: must be an integer (got "ten")'),
    ],
)
def test_error_messages_the_worker_toml_guide_quotes_are_real(
    text: str, env: dict[str, str], quoted: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert quoted in (ROOT / "docs" / "worker-toml.md").read_text()
    assert quoted in problems_of(text, env, monkeypatch, tmp_path)


def test_the_validate_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    # docs/commands.md shows a broken worker.toml and what `runner validate` says about it
    from tests.docs.blocks import blocks

    found = blocks(ROOT / "docs" / "commands.md")
    for name in ("tasks.py", "worker.toml"):
        (block,) = [b for b in found if b.title == name]
        (tmp_path / name).write_text(block.body)
    (shown,) = [b for b in found if b.lang == "console" and b.body.startswith("$ runner validate worker.toml\n")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_") and k != "REDIS_URL"}
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "runner.cli", "validate", "worker.toml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout + done.stderr == shown.body.removeprefix("$ runner validate worker.toml\n")


def _resolve(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


def test_every_python_path_the_docs_name_exists() -> None:
    # `runner.config.cron_check.crosscheck(...)` in prose goes stale silently when code moves; this catches it
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    named = {(page.name, m) for page in pages for m in re.findall(r"`(runner(?:\.\w+)+)[(`]", page.read_text())}
    assert len(named) >= 4
    stale = sorted(f"{page}: {dotted}" for page, dotted in named if not _resolve(dotted))
    assert not stale, f"the docs name Python paths that do not exist (any more): {stale}"
