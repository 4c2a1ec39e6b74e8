"""``runner schema`` and the committed schemas/worker.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

from runner.config.schema import schema_text
from tests.support.cli import invoke

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "worker.schema.json"


def test_committed_schema_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema_text(), (
        "schemas/worker.schema.json is stale; regenerate it with: runner schema > schemas/worker.schema.json"
    )


def test_schema_command_prints_it() -> None:
    result = invoke("schema")
    assert result.exit_code == 0
    assert result.stdout == schema_text()
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["FunctionConfig"]["required"] == ["path"]
    assert set(schema["properties"]) >= {"redis", "functions", "cron", "queues", "serializer", "hooks", "max_jobs"}
