"""Shared bits of the CLI tests: a clean environment and a small project on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runner.cli import cli

TASKS = """
import asyncio
import os
from typing import Any


async def send_email(ctx: dict[str, Any], to: str) -> str:
    return f"sent to {to}"


async def cleanup(ctx: dict[str, Any]) -> int:
    return 0


async def slow(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(60)


async def startup(ctx: dict[str, Any]) -> None:
    ctx["pid"] = os.getpid()


async def loop_kind(ctx: dict[str, Any]) -> str:
    return type(asyncio.get_running_loop()).__module__
"""


def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("RUNNER_") or name.upper() == "REDIS_URL":
            monkeypatch.delenv(name)


def make_project(directory: Path, toml: str, module: str = "clitasks") -> Path:
    (directory / f"{module}.py").write_text(TASKS)
    path = directory / "worker.toml"
    path.write_text(toml)
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="runner")
