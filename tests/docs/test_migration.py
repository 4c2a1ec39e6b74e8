"""docs/migrating-from-arq.md: `runner import-arq` on the page's arq module prints the page's worker.toml.

The module imports arq, so the command runs where arq imports: runner's interpreter with the real arq package
(from the interop venv, .arq-venv) on its path, as a user mid-migration has both installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import DOCS, blocks, runner_commands
from tests.interop.arq_env import VENV_DIR, ArqEnvError, ensure_arq_venv

PAGE = DOCS / "migrating-from-arq.md"

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def arq_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only the arq package, to put on runner's path (arq's own redis-py stays out)."""
    try:
        ensure_arq_venv()
    except ArqEnvError as exc:
        pytest.fail(str(exc), pytrace=False)
    (package,) = VENV_DIR.glob("lib/python*/site-packages/arq")
    overlay = tmp_path_factory.mktemp("arq-only")
    (overlay / "arq").symlink_to(package, target_is_directory=True)
    return overlay


def test_import_arq_prints_the_worker_toml_the_page_shows(arq_only: Path, tmp_path: Path) -> None:
    found = blocks(PAGE)
    (module,) = [b for b in found if b.title == "app/worker.py" and b.lang == "python"]
    (shown,) = [b for b in found if b.title == "worker.toml"]
    (command,) = [line for b in found if b.lang == "console" for line in runner_commands(b) if "import-arq" in line]
    assert command == "runner import-arq app.worker.WorkerSettings > worker.toml"
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "worker.py").write_text(module.body)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_") and k != "REDIS_URL"}
    env["PYTHONPATH"] = f"{arq_only}{os.pathsep}{tmp_path}"
    env["TZ"] = "Europe/Paris"  # the page's machine: arq runs its cron job in that zone, so the import writes it
    done = subprocess.run(
        [sys.executable, "-m", "runner.cli", "import-arq", "app.worker.WorkerSettings"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown.body, "the page's worker.toml is not what runner import-arq prints for its module"
    # what it could not carry over is said on stderr too, as the page says
    assert "RUNNER_REDIS__PASSWORD" in done.stderr
    assert "ctx" in done.stderr
