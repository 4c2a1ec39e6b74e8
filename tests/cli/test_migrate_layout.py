"""``runner migrate-layout``: waiting jobs move from arq's layout on one server to the cluster layout on a
cluster with their payload, score, lifetime and tries; a running job stays; a worker on the cluster runs them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runner import RedisSettings, RunnerRedis, create_pool
from tests.cli.test_cluster_ops import TOML
from tests.support.cli import invoke
from tests.support.cluster import ValkeyCluster
from tests.support.ops import TASKS, burst, clean_env


@pytest.fixture
def cluster_project(tmp_path: Path, cluster_server: ValkeyCluster, monkeypatch: pytest.MonkeyPatch) -> Path:
    clean_env(monkeypatch)
    cluster_server.flush()
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "opstasks.py").write_text(TASKS)
    path = tmp_path / "worker.toml"
    path.write_text(TOML.format(url=cluster_server.url))
    return path


async def _fill(url: str) -> list[str]:
    pool = await create_pool(RedisSettings.from_dsn(url), default_queue_name="mail")
    try:
        ids = []
        for n in range(5):
            job = await pool.enqueue_job("add", n, 1, _defer_by=0 if n else 1)
            assert job is not None
            ids.append(job.job_id)
        await pool.set("arq:retry:" + ids[1], 2)  # it ran twice before
        await pool.set("arq:in-progress:" + ids[2], b"1", px=60_000)  # a worker holds this one
        return ids
    finally:
        await pool.aclose()


async def _read(pool: RunnerRedis, queue: str, job_id: str) -> tuple[object, ...]:
    keys = pool.key_layout
    return (
        await pool.zscore(keys.queue(queue), job_id),
        await pool.get(keys.job(queue, job_id)),
        await pool.get(keys.retry(queue, job_id)),
    )


def test_waiting_jobs_move_to_the_cluster_and_run_there(
    cluster_project: Path, redis_url: str, cluster_server: ValkeyCluster
) -> None:
    ids = asyncio.run(_fill(redis_url))

    async def snapshot(url: str, cluster: bool) -> list[tuple[object, ...]]:
        pool = await create_pool(RedisSettings.from_dsn(url, cluster=cluster))
        try:
            return [await _read(pool, "mail", job_id) for job_id in ids]
        finally:
            await pool.aclose()

    before = asyncio.run(snapshot(redis_url, False))
    result = invoke("migrate-layout", "worker.toml", "--from", redis_url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "queue mail: moved 4 jobs; left 1 running\nqueue maintenance: moved 0 jobs\n"
    after = asyncio.run(snapshot(cluster_server.url, True))
    left = asyncio.run(snapshot(redis_url, False))
    for n in range(5):
        if n == 2:
            assert (after[n], left[n]) == ((None, None, None), before[n])  # the running job stayed
        else:
            assert (after[n], left[n]) == (before[n], (None, None, None))
    assert after[1][2] == b"2"
    # a second run finds nothing more to move
    assert invoke("migrate-layout", "worker.toml", "--from", redis_url, "--queue", "mail").stdout == (
        "queue mail: moved 0 jobs; left 1 running\n"
    )
    burst(cluster_project)
    listed = invoke("jobs", "worker.toml", "list").stdout.splitlines()[1:]
    assert sorted(line.split()[1] for line in listed) == ["complete"] * 4  # the deferred one too, when due
