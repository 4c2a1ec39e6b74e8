"""The Lua scripts (runner/engine/scripts/) and the key layout (runner/engine/keys.py) they get every key from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from runner import RedisSettings, create_pool
from runner.engine import scripts
from runner.engine.keys import ARQ_LAYOUT

RUNNER = Path(__file__).resolve().parents[2] / "runner"
SCRIPTS = RUNNER / "engine" / "scripts"


def lua_files() -> list[Path]:
    return sorted(p for p in SCRIPTS.glob("*.lua"))


def test_no_python_module_holds_a_lua_script() -> None:
    offenders = [str(p.relative_to(RUNNER)) for p in RUNNER.rglob("*.py") if "redis.call(" in p.read_text()]
    assert offenders == []


def test_every_script_is_loaded_and_listed() -> None:
    assert sorted(scripts.NAMES) == sorted(p.stem for p in lua_files())
    for name in scripts.NAMES:
        assert "#include" not in scripts.load(name)


@pytest.mark.parametrize("path", lua_files(), ids=lambda p: p.name)
def test_every_script_has_a_header(path: Path) -> None:
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("--"):
            break
        header.append(line)
    text = "\n".join(header)
    assert header[0].startswith(f"-- {path.stem}: ")
    assert "KEYS[1]" in text
    assert "ARGV" in text
    assert "-- Returns" in text
    assert re.search(r"-- Errors: |error code", text)


@pytest.mark.parametrize("path", lua_files(), ids=lambda p: p.name)
def test_scripts_touch_only_keys_they_are_given(path: Path) -> None:
    # every key is KEYS[n] or KEYS[n] .. id (a prefix the layout made); nothing builds a key name of its own.
    # The flow steps name their keys FK.<part>, a table each flow script fills from KEYS alone (include/flow.lua)
    source = scripts.load(path.stem)
    fk = re.search(r"local FK = \{(.*?)\}", source, re.DOTALL)
    if fk is not None:
        assert all(value.strip().startswith("KEYS[") for value in re.findall(r"= ([^,]+)", fk.group(1)))
    for command, first in re.findall(r"redis\.call\('(\w+)',\s*([^,)]+)", source):
        if command == "PUBLISH":
            assert first.startswith("ARGV[")  # a channel, not a key
            continue
        # or a table of such keys, named *_keys, sent in one command: unpack(removed_keys, ...)
        listed = re.fullmatch(r"unpack\(\w+_keys", first) is not None
        allowed = first.startswith("KEYS[") or (fk is not None and first.startswith("FK.")) or listed
        assert allowed or first in {"key", "wake_key"}, f"{command} {first}"


def test_the_wake_snippet_lives_once() -> None:
    sources = {p.name: p.read_text() for p in [*lua_files(), *SCRIPTS.glob("include/*.lua")]}
    pushing = [name for name, text in sources.items() if "'RPUSH'" in text]
    assert pushing == ["wake_one.lua"]
    assert {name for name, text in sources.items() if "-- #include wake_one" in text} == {
        "claim.lua",
        "enqueue.lua",
        "enqueue_flow.lua",
        "flow_release.lua",
        "requeue_failed.lua",
    }


async def test_finish_applies_a_batch_with_one_command_per_kind_and_checks_every_holder(redis_url: str) -> None:
    # finish.lua gathers the finished jobs' removals into one command each: a later outcome for the same id in
    # the call must still find it gone, and a claim another worker holds now is left alone
    layout, q = ARQ_LAYOUT, "arq:queue"
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        for job_id, holder in (("a", "t1"), ("b", "t1"), ("c", "other")):
            await pool.set(layout.job(q, job_id), b"payload")
            await pool.set(layout.in_progress(q, job_id), holder)
            await pool.set(layout.retry(q, job_id), 1)
            await pool.zadd(layout.queue(q), {job_id: 1})
        await pool.hset(layout.claimed(q, "t1"), mapping={"a": 1, "b": 1})
        outcomes = [("a", "fc", b"r", 60_000, 0, "t1"), ("a", "fc", b"r2", 60_000, 0, "t1")]
        outcomes += [("b", "fc", b"r", 60_000, 0, "t1"), ("c", "fc", b"r", 60_000, 0, "t1")]
        values: list[Any] = [value for outcome in outcomes for value in outcome]
        head = [layout.queue(q), layout.abort(q), layout.stats(q, 0), layout.failed(q), layout.failed_expiry(q)]
        head += [layout.job_prefix(q), layout.in_progress_prefix(q), layout.retry_prefix(q), layout.result_prefix(q)]
        head.append(layout.claimed_prefix(q))
        reply = await pool.eval(scripts.FINISH, len(head), *head, layout.done_channel(q), 60, 1, *values)
        assert reply == [2, b"a", b"gone", b"c", b"taken"]
        assert await pool.zrange(layout.queue(q), 0, -1) == [b"c"]
        assert await pool.get(layout.result(q, "a")) == b"r"
        assert await pool.exists(layout.job(q, "a"), layout.in_progress(q, "b"), layout.retry(q, "b")) == 0
        assert await pool.get(layout.in_progress(q, "c")) == b"other"
        assert await pool.exists(layout.result(q, "c"), layout.claimed(q, "t1")) == 0
        assert await pool.hget(layout.stats(q, 0), "complete") == b"2"
    finally:
        await pool.aclose()
