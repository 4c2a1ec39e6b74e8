"""``runner dashboard``: serves the file's queues on loopback, and refuses what would expose them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import invoke
from tests.support.ops import project  # noqa: F401 - a fixture
from tests.support.servers import free_port


def test_serves_the_dashboard_on_loopback(project: Path) -> None:  # noqa: F811
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "dashboard", str(project), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        assert banner == (
            f"runner dashboard for {project} at http://127.0.0.1:{port}/ (read-write, no credentials (loopback only))\n"
        )
        assert proc.stdout.readline().decode().startswith("  Redis: redis://127.0.0.1:")
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v1/overview", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        assert [q["name"] for q in response.json()["queues"]] == ["mail", "maintenance"]
        rebound = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "attacker.example"}, timeout=5)
        assert rebound.status_code == 400
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        # uvicorn shuts down gracefully, then ends by the signal it was sent, as a shell expects
        assert proc.wait(20) == -signal.SIGTERM
        assert proc.stdout is not None
        rest = proc.stdout.read().decode()
        proc.stdout.close()
    assert "Error" not in rest and "Traceback" not in rest


def test_refuses_another_address_without_credentials(project: Path) -> None:  # noqa: F811
    result = invoke("dashboard", str(project), "--host", "0.0.0.0")
    assert result.exit_code == 3
    assert result.output == (
        "Error: refusing to serve the dashboard on 0.0.0.0 without credentials: set RUNNER_DASHBOARD__TOKEN or "
        "RUNNER_DASHBOARD__PASSWORD in the environment, or listen on 127.0.0.1\n"
    )


def test_credentials_from_the_environment_allow_another_address(
    project: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNNER_DASHBOARD__TOKEN", "s3cret-token-from-the-environment")
    # a documentation address no machine has: the credential check passes and binding fails, so nothing listens
    result = invoke("dashboard", str(project), "--host", "192.0.2.1", "--port", "8123")
    assert result.exit_code == 3
    assert result.output.startswith("Error: cannot listen on 192.0.2.1:8123 (")
    assert "choose another with --host/--port" in result.output and "s3cret" not in result.output


def test_a_taken_port_is_one_clear_line(project: Path) -> None:  # noqa: F811
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = invoke("dashboard", str(project), "--port", str(port))
    assert result.exit_code == 3
    assert result.output == (
        f"Error: cannot listen on 127.0.0.1:{port} (Address already in use); choose another with --host/--port\n"
    )


def test_a_secret_in_worker_toml_is_refused(project: Path) -> None:  # noqa: F811
    project.write_text(project.read_text() + '\n[dashboard]\npassword = "hunter2"\n')
    result = invoke("dashboard", str(project))
    assert result.exit_code == 1
    line = project.read_text().splitlines().index('password = "hunter2"') + 1
    assert result.output == (
        f"Error: {project}:{line}: dashboard.password: a secret does not belong in {project}; set "
        "RUNNER_DASHBOARD__PASSWORD in the environment instead\n"
    )
    validated = invoke("validate", str(project))
    assert "dashboard.password: a secret does not belong in" in validated.output and "hunter2" not in validated.output


def test_dashboard_settings_come_from_the_file(project: Path) -> None:  # noqa: F811
    project.write_text(project.read_text() + '\n[dashboard]\nhost = "0.0.0.0"\nrefresh = "2s"\n')
    # the file's host is used, and refused without credentials just like the flag
    result = invoke("dashboard", str(project))
    assert result.exit_code == 3 and "on 0.0.0.0 without credentials" in result.output
