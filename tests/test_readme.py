"""The quickstart runs as written (the README's, and its longer walk in docs/getting-started.md), and the test
command is the one CI runs.

Installing into a fresh venv is too slow for the suite, so the Quickstart's venv is made without pip (ensurepip
alone takes seconds) and ``pip install …`` steps are skipped: the commands after them run with this interpreter and
its ``runner`` script, in a temp copy of examples/, exactly as the pages show.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import embedded

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
TEST_COMMAND = 'pip install -e ".[dev]" && make check'
VENV_LINE = "python3 -m venv .venv && . .venv/bin/activate"


def section(title: str, page: Path = README) -> str:
    """The text under ``## title`` up to the next heading of the same level."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", page.read_text(), flags=re.S | re.M)
    assert match, f"{page.name} has no '## {title}' section"
    return match.group(1)


def console_blocks(text: str) -> list[list[str]]:
    """The commands of each ```console block, one list per block."""
    blocks = re.findall(r"^```console\n(.*?)^```", text, flags=re.S | re.M)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def runner_script() -> str:
    script = Path(sys.executable).with_name("runner")
    found = str(script) if script.exists() else shutil.which("runner")
    assert found, "the runner script is not installed next to this interpreter"
    return found


def as_run_here(command: str) -> list[list[str]]:
    """The steps of one README command line, minus installs, with this interpreter and runner script."""
    steps = []
    for part in command.split("&&"):
        argv = shlex.split(part)
        if argv[:2] == ["pip", "install"]:
            continue  # already installed: this interpreter runs the tests
        if argv[0] == "python":
            argv[0] = sys.executable
        elif argv[0] == "runner":
            argv[0] = runner_script()
        else:
            pytest.fail(f"the quickstart runs {argv[0]!r}, which this test does not know how to run")
        steps.append(argv)
    return steps


def clean_env() -> dict[str, str]:
    # a fresh machine has none of these: let worker.toml and the examples decide where Redis is
    return {
        k: v for k, v in os.environ.items() if not k.startswith("RUNNER_") and k not in ("REDIS_URL", "EXAMPLE_OUTBOX")
    }


def run(argv: list[str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run one step to its end; on a hang, end it and whatever it started (its own session) by id."""
    proc = subprocess.Popen(
        argv, cwd=cwd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{shlex.join(argv)} did not finish in {timeout}s:\n{out}\n{err}")
    assert proc.returncode == 0, f"{shlex.join(argv)} exited with {proc.returncode}:\n{out}\n{err}"
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Path]:
    """What the quickstart needs of a checkout (examples/), in a temp directory; servers stopped afterwards."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns(".runner", "__pycache__"))
    yield tmp_path
    # the examples' server, and one in the working directory should something resolve .runner against it
    for data in (tmp_path / "examples" / ".runner", tmp_path / ".runner"):
        embedded.stop(data, timeout=10)


async def stored_results(data_dir: Path) -> list[object]:
    from runner import RedisSettings, create_pool

    pool = await create_pool(RedisSettings.from_dsn(f"embedded://{data_dir}"))
    try:
        return list(await pool.all_job_results())
    finally:
        await pool.aclose()


def test_test_command_is_the_one_ci_runs() -> None:
    assert console_blocks(section("Tests")) == [[TEST_COMMAND]]
    assert console_blocks(section("Quickstart"))[-1] == [TEST_COMMAND]
    ci_steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    # .ci/run spells the same two steps on two lines, in a fresh venv
    assert [step.strip() for step in TEST_COMMAND.split("&&")] == [s for s in ci_steps if s and s in TEST_COMMAND]


def test_quickstart_commands_run_as_written(checkout: Path) -> None:
    first, _tests = console_blocks(section("Quickstart"))
    # getting started walks through the same first commands, then jobs that wait for a worker
    assert console_blocks(section("The example worker", GETTING_STARTED)) == [first]
    (persistence,) = console_blocks(section("Jobs wait for a worker", GETTING_STARTED))
    assert len(first) == 2
    # 0. a virtualenv first: Debian's system Python refuses `pip install` outside one (PEP 668)
    assert first[0] == VENV_LINE
    make_venv = shlex.split(VENV_LINE.split("&&")[0])
    run([sys.executable if make_venv[0] == "python3" else make_venv[0], *make_venv[1:], "--without-pip"], checkout)
    assert (checkout / ".venv" / "bin" / "activate").is_file()  # what the line's `. .venv/bin/activate` sources
    assert first[1].startswith("pip install -e . && ")  # one command: install, then run the example worker

    # 1. the demo: enqueues, runs `runner start examples/worker.toml`, prints results
    (demo,) = as_run_here(first[1])
    out = run(demo, checkout).stdout
    assert "Starting the worker: runner start examples/worker.toml" in out
    assert out.count(" ✓ ") == 4
    assert out.count(" ✗ TimeoutError") == 1

    # 2. jobs enqueued with no worker running survive a server stop and run after `runner start --burst`
    steps = [step for line in persistence for step in as_run_here(line)]
    assert [shlex.join(step[1:]) for step in steps] == [
        "examples/demo.py --enqueue-only",
        "embedded stop examples/.runner",
        "start examples/worker.toml --burst",
    ]
    outputs = [run(step, checkout).stdout for step in steps]
    assert outputs[0].startswith("Enqueued 5 jobs into embedded://")
    data_dir = checkout / "examples" / ".runner"
    # stopped by the command, or already gone by itself after its linger: either way not running any more
    assert re.fullmatch(
        rf"(Stopped the embedded server in {re.escape(str(data_dir))} \(pid \d+\)|"
        rf"No embedded server is running in {re.escape(str(data_dir))})\.\n",
        outputs[1],
    )
    assert not (checkout / ".runner").exists(), (
        'runner start resolved url = "embedded://.runner" against the working directory; it is relative to worker.toml'
    )
    outbox = data_dir / "outbox"
    assert len(list(outbox.glob("*.eml"))) == 4  # two from the demo, two from the burst run
    results = asyncio.run(stored_results(data_dir))
    assert len(results) == 10
    assert sum(1 for result in results if getattr(result, "success", False)) == 8


def test_worker_toml_example_validates_against_the_example_tasks(tmp_path: Path) -> None:
    # the README's worker.toml names functions of examples/tasks.py; runner validate imports each of them
    (example,) = re.findall(r"^```toml\n(.*?)^```", section("worker.toml"), flags=re.S | re.M)
    shutil.copy(ROOT / "examples" / "tasks.py", tmp_path / "tasks.py")
    (tmp_path / "worker.toml").write_text(example)
    done = run([runner_script(), "validate", "worker.toml"], tmp_path)
    assert done.stdout.startswith("worker.toml: OK")


def test_the_first_python_example_needs_no_redis() -> None:
    """The Python example after the Quickstart works on the machine the Quickstart promises needs nothing."""
    code = re.search(r"^```python\n(.*?)^```", section("The Python API"), flags=re.S | re.M)
    assert code
    urls = re.findall(r'from_dsn\("([^"]+)"\)', code.group(1))
    assert urls
    assert all(url.startswith("embedded://") for url in urls), urls


def test_moving_from_arq_is_the_rewrite_the_differences_and_import_arq() -> None:
    from tests.interop.differential.harness import MIGRATION_PAGE, rewrite_command

    text = section("Moving from arq")
    # the very line the differential tests run on their scenarios (harness.rewrite_command reads it off the page)
    assert console_blocks(text) == [[rewrite_command()], ["runner import-arq app.worker.WorkerSettings > worker.toml"]]
    assert "runner start app.worker.WorkerSettings" in text
    (anchor,) = re.findall(r"\(docs/migrating-from-arq\.md#([a-z-]+)\)", text)
    headings = re.findall(r"^## (.+)$", MIGRATION_PAGE.read_text(), flags=re.M)
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    assert anchor in slugs, f"README links to #{anchor}, which {MIGRATION_PAGE.name} has no heading for"


def test_the_readme_stays_a_doorway() -> None:
    """At most ~250 lines, no leftover section markers, and every link it gives leads to a file of the checkout."""
    text = README.read_text()
    assert len(text.splitlines()) <= 250, "the README is a doorway: move the new material to a page of docs/"
    assert "<!--" not in text
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [target for target in targets if "://" not in target]
    assert local, "the README links into the docs"
    missing = [target for target in local if not (ROOT / target).exists()]
    assert missing == []


def test_the_readme_says_pickle_runs_code_and_where_to_read_more() -> None:
    text = " ".join(README.read_text().split())
    assert "pickle, arq's and the default serializer, runs any code a payload names" in text
    assert "[security](docs/security.md)" in text
    # the default it warns about is the real one
    from runner.config.models import WorkerSettings

    assert WorkerSettings.model_fields["serializer"].default == "pickle"
