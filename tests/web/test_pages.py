"""Every page of the dashboard over real HTTP, against a real server holding jobs in every state."""

from __future__ import annotations

import html
import os
import pickle
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis

from tests.support.ops import burst, enqueue, wait_status
from tests.support.web import LONG_ARG, XSS_ARG, XSS_SUBJECT, Seeded, client, csrf_of, options_for


def job_ids(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<td class="id"><a href="/jobs/[^"]+">([^<]+)</a>', page)]


def test_overview_counts_every_state_and_draws_the_hour(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        response = http.get("/")
    assert response.status_code == 200
    page = response.text
    mail = page[page.index('href="/queues/mail"') : page.index('href="/queues/maintenance"')]
    counts = dict(re.findall(r"<dt>([A-Za-z ]+)</dt><dd><a[^>]*>([\d,+]+)</a>", mail))
    # queued: three adds, the XSS and the long job, and the undecodable payload
    assert counts == {"Queued": "6", "Deferred": "1", "In progress": "1", "Failed": "2", "Workers": "1"}
    assert mail.count('<rect class="bg"') == 60  # one bar per minute of the last hour
    assert "1 complete" in mail and "2 failed" in mail
    assert "No worker has reported" in page  # maintenance has none


def test_queue_page_filters_by_state_and_function_and_pages(seeded: Seeded, config: Path, serve: Any) -> None:
    server = serve(options_for(config))
    with client(server) as http:
        everything = job_ids(http.get("/queues/mail").text)
        queued = job_ids(http.get("/queues/mail?state=queued").text)
        deferred = job_ids(http.get("/queues/mail?state=deferred").text)
        running = job_ids(http.get("/queues/mail?state=in_progress").text)
        adds = job_ids(http.get("/queues/mail?function=add").text)
        first = http.get("/queues/mail?state=queued&limit=2")
        second_link = html.unescape(re.search(r'href="([^"]+)">Next', first.text).group(1))
        second = job_ids(http.get(second_link).text)
    assert set(everything) == {*seeded.queued, seeded.xss, seeded.long, seeded.deferred, seeded.running, seeded.garbage}
    assert set(queued) == {*seeded.queued, seeded.xss, seeded.long, seeded.garbage}
    assert deferred == [seeded.deferred]
    assert running == [seeded.running]
    assert set(adds) == {*seeded.queued, seeded.deferred}
    assert "1–2" in first.text and "of 6" in first.text
    assert job_ids(first.text) + second == queued[:4]


def test_undecodable_payload_is_shown_as_such(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        listed = http.get("/queues/mail?state=queued").text
        job = http.get(f"/jobs/{seeded.garbage}")
    assert "cannot decode: unable to deserialize job" in listed
    assert job.status_code == 200
    assert "stored payload cannot be decoded" in job.text


def test_arguments_are_escaped_never_markup(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        listed = http.get("/queues/mail").text
        job = http.get(f"/jobs/{seeded.xss}").text
    for page in (listed, job):
        assert XSS_ARG not in page and "<img src=x" not in page
    # each value is shown as its text: escaped markup that reads back as exactly the repr
    shown = [html.unescape(v) for v in re.findall(r'<pre class="value">(.*?)</pre>', job, re.S)]
    assert repr(XSS_ARG) in shown and repr(XSS_SUBJECT) in shown


def test_long_values_are_cut_with_a_link_to_the_whole(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        job = http.get(f"/jobs/{seeded.long}").text
        link = html.unescape(re.search(r'href="([^"]+/value/[^"]+)">Whole value \(5,002 characters\)', job).group(1))
        whole = http.get(link)
        missing = http.get(f"/jobs/{seeded.long}/value/args.7")
    assert LONG_ARG not in job and "x" * 1990 in job
    assert whole.status_code == 200 and whole.text == repr(LONG_ARG)
    assert whole.headers["content-type"].startswith("text/plain")
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert missing.status_code == 404 and "has no value" in missing.text


def test_job_pages_show_what_each_state_knows(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        failed = http.get(f"/jobs/{seeded.failed[0]}").text
        complete = http.get(f"/jobs/{seeded.complete}").text
        queued = http.get(f"/jobs/{seeded.queued[0]}").text
        running = http.get(f"/jobs/{seeded.running}").text
        deferred = http.get(f"/jobs/{seeded.deferred}").text
    assert "ValueError: boom 1" in failed and "Traceback (most recent call last)" in failed
    assert ">Retry</button>" in failed and ">Delete</button>" in failed
    assert "&#39;sent hi to a@b.c&#39;" in complete and ">Retry</button>" not in complete
    assert ">Abort</button>" in queued and ">Delete</button>" in queued and "waiting" in queued
    assert ">Abort</button>" in running and ">Delete</button>" not in running and "held by a worker" in running
    assert "(in 59m" in deferred or "(in 1h00m" in deferred


def test_failed_page_lists_newest_first_with_its_actions(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        page = http.get("/queues/mail/failed").text
        confirm = http.get("/queues/mail/failed/confirm?action=retry-all").text
        purge = http.get("/queues/mail/failed/confirm?action=purge").text
    assert sorted(job_ids(page)) == sorted(seeded.failed)  # one batch wrote both: the same finish time
    assert "ValueError: boom 2" in page
    assert "Retry all…" in page and "Purge…" in page
    assert "Retry all 2 failed jobs of mail?" in confirm and 'name="confirm" value="yes"' in confirm
    assert "Delete the results of all 2 failed jobs of mail?" in purge


def test_retry_from_the_job_page_then_a_worker_completes_it(
    seeded: Seeded, config: Path, redis_url: str, serve: Any
) -> None:
    with client(serve(options_for(config))) as http:
        page = http.get(f"/jobs/{seeded.failed[0]}").text
        response = http.post(f"/jobs/{seeded.failed[0]}/retry", data={"csrf": csrf_of(page)})
        assert response.status_code == 303
        shown = http.get(response.headers["location"]).text
    assert "Queued again" in shown and 'class="status s-queued"' in shown
    wait_status(redis_url, seeded.failed[0], "mail", "queued")


def test_abort_and_delete_from_the_job_page(seeded: Seeded, config: Path, redis_url: str, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        token = csrf_of(http.get(f"/jobs/{seeded.running}").text)
        aborted = http.post(f"/jobs/{seeded.running}/abort", data={"csrf": token}, follow_redirects=True)
        deleted = http.post(f"/jobs/{seeded.deferred}/delete", data={"csrf": token})
        gone = http.get(f"/jobs/{seeded.deferred}")
        refused = http.post(f"/jobs/{seeded.complete}/retry", data={"csrf": token})
    assert "Abort requested" in aborted.text
    wait_status(redis_url, seeded.running, "mail", "complete")  # the worker cancelled it: its result says so
    assert deleted.status_code == 303 and deleted.headers["location"] == "/queues/mail?done=deleted"
    assert gone.status_code == 404 and "Nothing is stored about job" in gone.text
    assert refused.status_code == 409 and "only failed jobs retry" in refused.text


def test_retry_all_needs_confirmation(seeded: Seeded, config: Path, redis_url: str, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        token = csrf_of(http.get("/queues/mail/failed/confirm?action=retry-all").text)
        unconfirmed = http.post("/queues/mail/failed/retry-all", data={"csrf": token})
        done = http.post("/queues/mail/failed/retry-all", data={"csrf": token, "confirm": "yes"}, follow_redirects=True)
    assert unconfirmed.status_code == 303 and "confirm?action=retry-all" in unconfirmed.headers["location"]
    assert "Queued again: 2 failed jobs." in done.text and job_ids(done.text) == []
    for job_id in seeded.failed:
        wait_status(redis_url, job_id, "mail", "queued")


def test_purge_needs_confirmation(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        token = csrf_of(http.get("/queues/mail/failed/confirm?action=purge").text)
        unconfirmed = http.post("/queues/mail/failed/purge", data={"csrf": token})
        purged = http.post("/queues/mail/failed/purge", data={"csrf": token, "confirm": "yes"}, follow_redirects=True)
        gone = http.get(f"/jobs/{seeded.failed[0]}")
    assert unconfirmed.status_code == 303 and "confirm?action=purge" in unconfirmed.headers["location"]
    assert "Deleted the results of 2 failed jobs." in purged.text and job_ids(purged.text) == []
    assert gone.status_code == 404


def test_workers_and_cron_pages(seeded: Seeded, config: Path, serve: Any) -> None:
    assert seeded.worker is not None
    worker = seeded.worker.workers[0]
    with client(serve(options_for(config))) as http:
        workers = http.get("/workers").text
        cron = http.get("/cron").text
    assert worker.worker_id in workers and seeded.running in workers
    assert "1 of 1" in workers
    assert "nightly" in cron and "30 2 * * *" in cron and "Europe/London" in cron
    assert len(re.findall(r"<li><time", cron)) == 5
    assert re.search(r"02:30:00 (GMT|BST)", cron) and "never" in cron


def test_search_finds_exact_and_partial_ids(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        exact = http.get("/search", params={"q": seeded.complete})
        partial = http.get("/search", params={"q": "undecodable"}).text
        nothing = http.get("/search", params={"q": "no-such-id-anywhere"}).text
    assert exact.status_code == 303 and exact.headers["location"] == f"/jobs/{quote(seeded.complete, safe='')}"
    assert job_ids(partial) == [seeded.garbage]
    assert "No jobs here." in nothing


def test_partial_page_for_the_refresh_script(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        full = http.get("/queues/mail").text
        partial = http.get("/queues/mail", headers={"X-Runner-Partial": "1"}).text
        script = http.get("/static/dashboard.js")
        css = http.get("/static/dashboard.css")
    assert full.startswith("<!doctype html>") and 'data-refresh="5.0"' in full
    assert "<html" not in partial and '<table class="jobs">' in partial
    assert script.status_code == 200 and "X-Runner-Partial" in script.text and len(script.text) < 4000
    assert css.status_code == 200 and "@media (max-width: 640px)" in css.text
    assert "viewport" in full and "https://" not in full  # nothing from elsewhere


class Trap:
    """Unpickling this makes a directory: the proof that a payload ran code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.path,))


def test_a_planted_payload_is_shown_never_run(config: Path, redis_url: str, serve: Any, tmp_path: Path) -> None:
    trap = tmp_path / "ran"
    now = int(time.time() * 1000)
    client_ = redis.Redis.from_url(redis_url)
    try:
        job = {"t": None, "f": "send_email", "a": (Trap(trap),), "k": {}, "et": now}
        client_.set("arq:job:planted", pickle.dumps(job))
        client_.zadd("mail", {"planted": now})
    finally:
        client_.close()
    with client(serve(options_for(config))) as http:
        listed = http.get("/queues/mail").text
        page = http.get("/jobs/planted").text
    assert "posix.mkdir" in html.unescape(listed) and "not decoded" in html.unescape(page)
    assert not trap.exists()


def test_complete_lately_lists_what_finished_while_the_dashboard_listened(
    seeded: Seeded, config: Path, redis_url: str, serve: Any
) -> None:
    with client(serve(options_for(config))) as http:
        assert http.get("/queues/maintenance?state=complete").status_code == 200  # opens the connection
        listening = redis.Redis.from_url(redis_url)
        try:
            deadline = time.monotonic() + 20
            while listening.pubsub_numsub("runner:done:maintenance")[0][1] < 1:
                assert time.monotonic() < deadline, "the dashboard never subscribed to the done channel"
                time.sleep(0.02)
        finally:
            listening.close()
        job = enqueue(redis_url, "cleanup", _queue_name="maintenance")
        burst(config, "maintenance")
        deadline = time.monotonic() + 20
        while job not in job_ids(page := http.get("/queues/maintenance?state=complete").text):
            assert time.monotonic() < deadline, "the finished job never showed"
            time.sleep(0.05)
        api = http.get("/api/v1/queues/mail/jobs", params={"state": "complete"}).json()
    assert "Complete lately" in page and "while their result is kept" in page
    # the seeded complete job finished before the dashboard started, so it is found by its id only
    assert seeded.complete not in [j["id"] for j in api["jobs"]]
