"""The short soak: bench/soak.py with 500 jobs while workers are SIGKILLed and frozen, Redis is killed, connections are
killed and the network stalls; nothing lost, nothing run twice at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


@pytest.mark.slow
def test_short_soak_loses_no_job() -> None:
    args = ["--jobs", "500", "--workers", "3", "--duration", "15", "--kill-every", "1.5", "--redis-down", "1.5"]
    args += ["--redis-restarts", "1", "--storms", "1", "--stalls", "1", "--freezes", "1"]
    proc = subprocess.Popen(
        [sys.executable, str(SOAK), *args, "--drain-timeout", "40", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the soak then ends its own workers and server
        stdout, stderr = proc.communicate(timeout=15)
        raise AssertionError(f"the soak did not finish in time:\n{stderr}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stdout, stderr
    [report] = json.loads(stdout.splitlines()[-1])["runs"]
    assert report["enqueued"] == 500, report
    assert report["completed"] == 500 and report["lost"] == 0 and report["failed"] == 0, report
    assert report["stuck_in_queue"] == 0, report
    assert report["concurrent_runs"] == 0 and report["undocumented_duplicates"] == 0, report
    # the chaos really happened
    assert report["worker_kills"] >= 1 and report["redis_restarts"] == 1, report
    assert report["freezes"] == report["storms"] == report["stalls"] == 1, report
    assert proc.returncode == 0, stderr
