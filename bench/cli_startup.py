"""How long the ``runner`` command takes to start: ``runner --help`` and ``runner validate`` (issue 11).

    .venv/bin/python bench/cli_startup.py [--runs N] [--importtime] [--source DIR]

Each command runs ``--runs`` times (default 20) in a fresh process with this interpreter's ``runner`` script, as a
user would type it; the figures are the median and the fastest wall time, and the median CPU time (user + system,
steadier than wall time on a shared machine). ``runner validate`` checks
examples/worker.toml, which imports examples/tasks.py. ``--importtime`` adds the ten slowest imports of each
command (``python -X importtime``, cumulative milliseconds). ``--source DIR`` measures the runner package in DIR
instead, e.g. a ``git worktree`` of an older commit, with the same interpreter and packages.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = "import sys; from runner.cli import main; sys.argv[0] = 'runner'; main()"
COMMANDS = {
    "runner --help": ["--help"],
    "runner validate examples/worker.toml": ["validate", "examples/worker.toml"],
}


def _env(source: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_") and k != "REDIS_URL"}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return env


def timings(args: list[str], runs: int, source: Path | None) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each run (what the ``runner`` script runs: ``runner.cli.main``)."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        command = [sys.executable, "-P", "-c", CODE, *args]  # -P: no working directory on sys.path
        subprocess.run(
            command, cwd=ROOT, env=_env(source), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def slowest_imports(args: list[str], source: Path | None, count: int = 10) -> list[tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-P", "-X", "importtime", "-c", CODE, *args],
        cwd=ROOT, env=_env(source), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((int(cumulative), name))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--importtime", action="store_true")
    parser.add_argument("--source", type=Path, help="a directory holding the runner package to measure")
    options = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {options.runs} runs each")
    for label, args in COMMANDS.items():
        walls, cpus = timings(args, options.runs, options.source)
        print(
            f"{label:<38} wall: median {statistics.median(walls) * 1000:5.0f} ms, fastest {min(walls) * 1000:5.0f} ms;"
            f"  CPU: median {statistics.median(cpus) * 1000:5.0f} ms"
        )
        if options.importtime:
            for cumulative, name in slowest_imports(args, options.source):
                print(f"    {cumulative / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
