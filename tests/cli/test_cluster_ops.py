"""The operations commands on a Redis Cluster: ``cluster = true`` in worker.toml, and enqueue, info, jobs list,
start and check read and write the cluster layout on every node."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.cli import invoke
from tests.support.cluster import ValkeyCluster
from tests.support.ops import TASKS, burst, clean_env

TOML = """\
poll_delay = 0.05

[redis]
url = "{url}"
cluster = true
conn_retries = 0

[functions.add]
path = "opstasks:add"

[functions.fails]
path = "opstasks:fails"
max_tries = 1

[queues.mail]
functions = ["add", "fails"]

[queues.maintenance]
functions = ["add"]
"""


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


def test_enqueue_info_jobs_and_check_on_a_cluster(cluster_project: Path) -> None:
    for args in (
        ("add", "1", "2", "--queue", "mail"),
        ("fails", "7", "--queue", "mail"),
        ("add", "3", "4", "--queue", "maintenance"),
    ):
        result = invoke("enqueue", "worker.toml", *args)
        assert result.exit_code == 0, result.output
    queue_of = {"mail": 2, "maintenance": 1}
    result = invoke("info", "worker.toml")
    assert result.exit_code == 0, result.output
    for queue, queued in queue_of.items():
        assert re.search(rf"^{queue} +{queued} +0 +0 ", result.stdout, re.M), result.stdout
    listed = invoke("jobs", "worker.toml", "list")
    assert [line.split()[1] for line in listed.stdout.splitlines()[1:]] == ["queued"] * 3
    burst(cluster_project)
    listed = invoke("jobs", "worker.toml", "list")
    statuses = sorted(line.split()[1] for line in listed.stdout.splitlines()[1:])
    assert statuses == ["complete", "complete", "failed"], listed.stdout
    result = invoke("check", "worker.toml")
    assert result.exit_code == 1  # the burst workers have gone, and said so
    assert result.stdout == (
        "queue mail: no worker reported within 11s\nqueue maintenance: no worker reported within 11s\n"
    )


def test_a_sharded_queue_through_enqueue_info_jobs_and_start(cluster_project: Path) -> None:
    cluster_project.write_text(
        cluster_project.read_text().replace('functions = ["add", "fails"]', 'functions = ["add", "fails"]\nshards = 3')
    )
    (cluster_project.parent / "jobs.jsonl").write_text("".join(f"[{n}, 1]\n" for n in range(30)))
    result = invoke("enqueue", "worker.toml", "add", "--queue", "mail", "--bulk", "jobs.jsonl")
    assert result.exit_code == 0 and result.stdout == "enqueued 30 jobs on mail\n", result.output
    result = invoke("enqueue", "worker.toml", "add", "5", "6", "--queue", "mail", "--job-id", "the-one")
    assert result.exit_code == 0, result.output
    result = invoke("info", "worker.toml")
    assert re.search(r"^mail +31 +0 +0 ", result.stdout, re.M), result.stdout  # the three shards summed
    listed = invoke("jobs", "worker.toml", "list", "--queue", "mail")
    assert [line.split()[1] for line in listed.stdout.splitlines()[1:]] == ["queued"] * 31
    # each row names its shard: the jobs spread over all three
    assert {line.split()[2] for line in listed.stdout.splitlines()[1:]} == {"mail", "mail:1", "mail:2"}
    burst(cluster_project)
    listed = invoke("jobs", "worker.toml", "list", "--queue", "mail")
    assert sorted(line.split()[1] for line in listed.stdout.splitlines()[1:]) == ["complete"] * 31, listed.stdout
    shown = invoke("jobs", "worker.toml", "show", "the-one")
    assert shown.exit_code == 0 and "complete" in shown.stdout and "11" in shown.stdout, shown.output
