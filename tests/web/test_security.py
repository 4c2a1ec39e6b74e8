"""Who may use the dashboard and what protects its reader: credentials, CSRF, origins, hosts, read-only mode,
headers, a Redis password that never shows, and errors that never show a traceback."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from runner.engine.connection import RedisSettings
from runner.web.board import Board
from runner.web.options import LOOPBACK_NAMES, Credentials
from tests.support.servers import ValkeyServer, free_port
from tests.support.web import Seeded, client, csrf_of, options_for, seed, write_project

PASSWORD = "correct horse battery staple"
TOKEN = "another-long-token-for-the-tests"


def test_credentials_are_required_once_configured(seeded: Seeded, config: Path, serve: Any) -> None:
    server = serve(options_for(config, credentials=Credentials(token=TOKEN, username="ops", password=PASSWORD)))
    with client(server) as http:
        anonymous = http.get("/")
        api = http.get("/api/v1/overview")
        wrong = http.get("/", auth=("ops", "guess"))
        wrong_user = http.get("/", auth=("root", PASSWORD))
        right = http.get("/", auth=("ops", PASSWORD))
        token_as_password = http.get("/", auth=("anyone", TOKEN))
        bearer = http.get("/api/v1/overview", headers={"Authorization": f"Bearer {TOKEN}"})
        bad_bearer = http.get("/api/v1/overview", headers={"Authorization": "Bearer nope"})
        garbage = http.get("/", headers={"Authorization": "Basic !!!not-base64"})
        assets = http.get("/static/dashboard.css")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic realm=")
    assert "needs credentials" in anonymous.text and PASSWORD not in anonymous.text
    assert api.status_code == 401 and api.json()["error"]["status"] == 401
    assert wrong.status_code == wrong_user.status_code == bad_bearer.status_code == garbage.status_code == 401
    assert right.status_code == token_as_password.status_code == bearer.status_code == 200
    assert assets.status_code == 200  # the sign-in page may be styled


def test_changes_need_the_csrf_token_and_this_origin(seeded: Seeded, config: Path, serve: Any) -> None:
    server = serve(options_for(config))
    target = f"/jobs/{seeded.failed[0]}/retry"
    with client(server) as http:
        token = csrf_of(http.get(f"/jobs/{seeded.failed[0]}").text)
        missing = http.post(target, data={})
        wrong = http.post(target, data={"csrf": "x" * 43})
        other_site = http.post(target, data={"csrf": token}, headers={"Origin": "https://evil.example"})
        api_no_header = http.post(f"/api/v1/jobs/{seeded.failed[0]}/retry")
        api_header = http.post(f"/api/v1/jobs/{seeded.failed[0]}/retry", headers={"X-CSRF-Token": token})
    with client(server) as fresh:  # another browser: no cookie, so a token copied from elsewhere is no use
        stolen = fresh.post(target, data={"csrf": token})
    for refused in (missing, wrong, other_site, api_no_header, stolen):
        assert refused.status_code == 403, refused.text
    assert "CSRF" in missing.text and "another site" in other_site.text
    assert api_header.status_code == 200 and api_header.json()["done"] == "retried"


def test_the_csrf_cookie_is_strict_and_http_only(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        cookie = http.get("/").headers["set-cookie"]
        again = http.get("/").headers.get("set-cookie")
    assert "runner_dashboard_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/" in cookie and again is None  # set once per browser


def test_read_only_hides_and_refuses_every_action(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config, read_only=True))) as http:
        job = http.get(f"/jobs/{seeded.failed[0]}").text
        failed = http.get("/queues/mail/failed").text
        confirm = http.get("/queues/mail/failed/confirm?action=purge")
        token = http.cookies["runner_dashboard_csrf"]
        posted = http.post(f"/jobs/{seeded.failed[0]}/retry", data={"csrf": token})
        purge = http.post("/queues/mail/failed/purge", data={"csrf": token, "confirm": "yes"})
        api = http.post("/api/v1/queues/mail/failed/purge?confirm=true", headers={"X-CSRF-Token": token})
        described = http.get(f"/api/v1/jobs/{seeded.failed[0]}").json()
    assert '<form method="post"' not in job and '<form method="post"' not in failed
    assert "read-only" in job and "Retry all" not in failed
    assert confirm.status_code == posted.status_code == purge.status_code == api.status_code == 403
    assert "read-only" in posted.text and described["actions"] == []


def test_security_headers_on_every_response(seeded: Seeded, config: Path, serve: Any) -> None:
    with client(serve(options_for(config))) as http:
        responses = [http.get("/"), http.get("/api/v1/overview"), http.get("/jobs/nope"), http.get("/static/x.js")]
    for response in responses:
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    assert responses[0].headers["cache-control"] == "no-store"


def test_an_open_dashboard_answers_only_to_loopback_names(seeded: Seeded, config: Path, serve: Any) -> None:
    server = serve(options_for(config, allowed_hosts=list(LOOPBACK_NAMES)))
    with client(server) as http:
        rebound = http.get("/api/v1/overview", headers={"Host": "attacker.example"})
        local = http.get("/api/v1/overview", headers={"Host": f"localhost:{server.port}"})
    assert rebound.status_code == 400
    assert local.status_code == 200


def test_the_redis_password_never_appears(project: Path, serve: Any) -> None:
    server = ValkeyServer().start()
    try:
        url = f"redis://:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{server.port}/0"
        client_ = redis.Redis(port=server.port)
        client_.config_set("requirepass", PASSWORD)
        client_.close()
        config = write_project(project.parent, url)
        jobs = seed(config, url)
        try:
            good = serve(options_for(config))
            bad = serve(options_for(config, redis_settings=replace(options_for(config).redis_settings, password="x")))
            pages = ["/", "/queues/mail", f"/jobs/{jobs.failed[0]}", "/workers", "/cron", "/api/v1/overview"]
            with client(good) as http, client(bad) as wrong:
                bodies = [http.get(p) for p in pages] + [wrong.get(p) for p in pages]
        finally:
            assert jobs.worker is not None
            jobs.worker.stop()
    finally:
        server.stop()
    assert [b.status_code for b in bodies] == [200] * 6 + [503] * 6
    for body in bodies:
        assert PASSWORD not in body.text and PASSWORD.replace(" ", "%20") not in body.text
    assert "redis://:***@127.0.0.1" in bodies[-1].text


def test_redis_down_is_a_clear_503_that_retries(seeded: Seeded, config: Path, serve: Any) -> None:
    nowhere = RedisSettings(host="127.0.0.1", port=free_port(), conn_timeout=0.5)
    with client(serve(options_for(config, redis_settings=nowhere))) as http:
        page = http.get("/")
        api = http.get("/api/v1/overview")
        job = http.get(f"/jobs/{seeded.failed[0]}")
    assert page.status_code == api.status_code == job.status_code == 503
    assert "Redis is not answering" in page.text and f"127.0.0.1:{nowhere.port}" in page.text
    assert 'data-refresh="5.0"' in page.text  # the page keeps trying by itself
    assert api.json()["error"]["title"] == "Redis is not answering"
    assert "Traceback" not in page.text + api.text + job.text


def test_an_unexpected_error_is_a_short_500_without_traceback(
    seeded: Seeded, config: Path, serve: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: Board) -> dict[str, Any]:
        await asyncio.sleep(0)
        raise RuntimeError("a bug with a secret in its message")

    monkeypatch.setattr(Board, "overview", broken)
    with client(serve(options_for(config))) as http:
        page = http.get("/")
        api = http.get("/api/v1/overview")
    assert page.status_code == api.status_code == 500
    assert "Something went wrong" in page.text and "details are in its log" in api.json()["error"]["message"]
    for text in (page.text, api.text):
        assert "Traceback" not in text and "RuntimeError" not in text and "secret" not in text
    assert "a bug with a secret" in caplog.text  # the log has it for whoever runs the dashboard
