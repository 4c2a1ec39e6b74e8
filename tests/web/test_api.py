"""The JSON API under /api/v1: every endpoint and action, the same data as the pages, errors as JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from runner.web import create_app
from runner.web.options import Credentials
from tests.support.ops import wait_status
from tests.support.web import LONG_ARG, XSS_ARG, Seeded, client, options_for

TOKEN = "t0ken-for-the-tests-0123456789"


def test_index_lists_every_endpoint(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        index = http.get("/api/v1").json()
    assert index["version"] == "v1" and index["queues"] == ["mail", "maintenance"]
    paths = {e["path"] for e in index["endpoints"]}
    assert "/api/v1/queues/{queue}/jobs" in paths and "/api/v1/jobs/{id}/retry" in paths


def test_reads_match_what_the_pages_show(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        overview = http.get("/api/v1/overview").json()
        queued = http.get("/api/v1/queues/mail/jobs", params={"state": "queued", "limit": 2}).json()
        after = http.get("/api/v1/queues/mail/jobs", params={"state": "queued", "position": queued["next_position"]})
        failed = http.get("/api/v1/queues/mail/failed").json()
        workers = http.get("/api/v1/workers").json()
        cron = http.get("/api/v1/cron").json()
        search = http.get("/api/v1/search", params={"q": "undecodable"}).json()
    mail = overview["queues"][0]
    assert (mail["name"], mail["queued"], mail["deferred"], mail["in_progress"], mail["failed"]) == ("mail", 6, 1, 1, 2)
    assert len(mail["per_minute"]) == 60 and mail["complete_last_hour"] == 1 and mail["failed_last_hour"] == 2
    assert queued["total"] == 6 and len(queued["jobs"]) == 2
    assert len(after.json()["jobs"]) == 4 and after.json()["next_position"] is None
    assert sorted(j["id"] for j in failed["jobs"]) == sorted(seeded.failed)
    assert {j["error"] for j in failed["jobs"]} == {"ValueError: boom 1", "ValueError: boom 2"}
    (worker,) = workers["queues"][0]["workers"]
    assert worker["running_ids"] == [seeded.running] and worker["pid"] > 0 and worker["host"]
    assert cron["cron"][0]["name"] == "nightly" and len(cron["cron"][0]["next_runs"]) == 5
    assert [j["id"] for j in search["jobs"]] == [seeded.garbage]


def test_job_holds_whole_values(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        long = http.get(f"/api/v1/jobs/{seeded.long}").json()
        xss = http.get(f"/api/v1/jobs/{seeded.xss}").json()
        failed = http.get(f"/api/v1/jobs/{seeded.failed[0]}").json()
    assert long["args"][0]["text"] == repr(LONG_ARG) and not long["args"][0]["truncated"]
    assert xss["args"][0]["text"] == repr(XSS_ARG)
    assert failed["status"] == "failed" and failed["actions"] == ["retry", "delete"]
    assert "Traceback" in failed["traceback"]["text"] and failed["result"]["text"] == "ValueError: boom 1"


def test_actions_with_the_bearer_token(seeded: Seeded, config: Path, redis_url: str, serve: Any) -> None:
    server = serve(options_for(config, credentials=Credentials(token=TOKEN)))
    with client(server, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        retried = http.post(f"/api/v1/jobs/{seeded.failed[0]}/retry")
        again = http.post(f"/api/v1/jobs/{seeded.failed[0]}/retry")
        aborted = http.post(f"/api/v1/jobs/{seeded.queued[0]}/abort")
        deleted = http.post(f"/api/v1/jobs/{seeded.deferred}/delete")
        unconfirmed = http.post("/api/v1/queues/mail/failed/retry")
        retry_all = http.post("/api/v1/queues/mail/failed/retry", params={"confirm": "true"})
        purge = http.post("/api/v1/queues/mail/failed/purge", params={"confirm": "true"})
        unknown = http.post(f"/api/v1/jobs/{seeded.queued[1]}/explode")
    assert retried.json() == {"id": seeded.failed[0], "done": "retried"}
    assert again.status_code == 409 and again.json()["error"]["title"] == "Not failed"
    assert aborted.json()["done"] == "abort_requested"
    assert deleted.json()["done"] == "deleted"
    assert unconfirmed.status_code == 400 and "confirm=true" in unconfirmed.json()["error"]["message"]
    assert retry_all.json() == {"retried": 1, "skipped": 0, "unreadable": 0}
    assert purge.json() == {"deleted": 0}
    assert unknown.status_code == 404
    wait_status(redis_url, seeded.failed[1], "mail", "queued")


def test_errors_are_json_with_a_message(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        missing = http.get("/api/v1/jobs/no-such-job")
        queue = http.get("/api/v1/queues/nope/jobs")
        garbage = http.get("/api/v1/queues/mail/jobs", params={"limit": "lots", "state": "queued"})
        state = http.get("/api/v1/queues/mail/jobs", params={"state": "<b>"})
        path = http.get("/api/v1/nothing/here")
    assert missing.status_code == 404 and "keep_result = 0" in missing.json()["error"]["message"]
    assert queue.status_code == 404 and "mail, maintenance" in queue.json()["error"]["message"]
    assert garbage.status_code == 400
    assert garbage.json()["error"]["message"] == 'limit must be a whole number from 1 to 500 (got "lots").'
    assert state.status_code == 400 and "state must be one of queued, deferred, in_progress, failed" in state.text
    assert path.status_code == 404 and path.json()["error"]["status"] == 404


def test_mounted_in_another_app_under_a_prefix(seeded: Seeded, config: Path, serve: Any) -> None:
    inner = create_app(options_for(config))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await inner.state.aclose()  # a mounted app's own shutdown is not run by its host

    outer = Starlette(routes=[Mount("/jobs", inner)], lifespan=lifespan)
    with client(serve(outer)) as http:
        overview = http.get("/jobs/")
        api = http.get("/jobs/api/v1/overview")
        job = http.get(f"/jobs/jobs/{seeded.failed[0]}")
    assert overview.status_code == 200
    assert 'href="/jobs/queues/mail"' in overview.text and 'href="/jobs/static/dashboard.css"' in overview.text
    assert api.json()["queues"][0]["failed"] == 2
    assert 'action="/jobs/jobs/' in job.text
