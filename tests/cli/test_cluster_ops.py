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
