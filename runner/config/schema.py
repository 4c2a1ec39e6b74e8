"""The JSON Schema of worker.toml, generated from the models (committed as ``schemas/worker.schema.json``)."""

from __future__ import annotations

import json
from typing import Any

from runner.config.models import WorkerSettings


def worker_schema() -> dict[str, Any]:
    """The schema as a dict; ``$schema`` first so editors recognise the draft."""
    generated = WorkerSettings.model_json_schema()
    generated.pop("$schema", None)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **generated}


def schema_text() -> str:
    """The schema as the text of ``schemas/worker.schema.json`` (stable key order, trailing newline)."""
    return json.dumps(worker_schema(), indent=2, ensure_ascii=False) + "\n"
