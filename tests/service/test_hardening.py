"""The service as a security reviewer tries it (wire-less runner): the gate answers before any
work, the safety lever stops and refuses until an admin releases it (also across a restart),
policies limit each token's reach with 403s naming the rule, admins and operators differ, and
the edges (OpenAPI, UI headers, run pages, schedule inputs, audit log) are closed."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from harness.service import guards
from harness.service import scheduler as scheduler_module
from harness.service.app import create_app
from harness.service.credentials import hash_secret
from harness.service.gate import MAX_BODY
from harness.service.schedules import GuardSpec
from tests.service.fakes import ADMIN, OPERATOR, READER, FakeRunner, bearer, service_files
from tests.service.fakes import settings_for as base_settings
from tests.service.test_api import Harness

TEAM = "team-a-secret-0001"
SAFETY = "safety-secret-00001"
HASHED = "hashed-secret-00001"
TOKENS_FILE = f"""\
tokens:
  - name: team-a
    secret: {TEAM}
    role: operator
    policy:
      targets: [staging-a]
      may_schedule: false
      max_concurrent_runs: 1
  - name: on-call
    secret: {SAFETY}
    role: safety
  - name: hashed
    secret_hash: '{hash_secret(HASHED)}'
    role: operator
"""
RUN = {"scenarios": ["QUICK-001"], "target": "staging-a"}
NIGHTLY = {"name": "nightly", "cron": "0 3 * * *", "scenarios": ["QUICK-001"],
           "target": "staging-a"}  # fmt: skip


def settings_for(base: Path, **overrides: Any):
    tokens = base / "tokens.yaml"
    tokens.write_text(TOKENS_FILE)
    config = service_files(base, targets=("staging-a", "staging-b"))
    return base_settings(base, config, tokens_file=tokens, **overrides)


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


@pytest.fixture
def api(base: Path) -> Iterator[Harness]:
    runner = FakeRunner()
    with TestClient(create_app(settings_for(base), run_fn=runner)) as client:
        yield Harness(client, runner)


def audit(h: Harness) -> list[tuple[str, str, str]]:
    return [(e["token"], e["action"], e["outcome"]) for e in h.service.store.audit_entries()]


def unchanged(h: Harness, before: dict[str, int]) -> bool:
    return {**h.service.store.counts(), "audit_log": 0} == {**before, "audit_log": 0}


# --- the gate ----------------------------------------------------------------------------


def test_no_token_is_answered_before_the_body_is_read(base: Path) -> None:
    app = create_app(settings_for(base), run_fn=FakeRunner())
    sent: list[dict] = []

    async def receive() -> dict:
        raise AssertionError("the body was read before the token was checked")

    async def send(message: dict) -> None:
        sent.append(message)

    for headers in ([], [(b"authorization", b"Bearer " + READER.encode())]):
        scope = {"type": "http", "method": "POST", "path": "/api/runs", "headers":
                 [(b"content-length", b"1000"), *headers], "client": ("192.0.2.1", 4),
                 "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
                 "server": ("t", 80), "app": app}  # fmt: skip
        sent.clear()
        anyio.run(app, scope, receive, send)
        assert sent[0]["status"] == (401 if not headers else 403)


def test_no_schedule_is_computed_for_a_caller_without_a_token(
    api: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        api.client.post("/api/schedules", json=NIGHTLY, headers=bearer(OPERATOR)).status_code == 201
    )

    def computed(*_: Any) -> None:
        raise AssertionError("next_fire computed for an unauthenticated caller")

    monkeypatch.setattr("harness.service.schedules_api.next_fire", computed)
    assert api.client.get("/api/schedules").status_code == 401
    assert api.client.get("/schedules").status_code == 401


def test_the_ui_sets_no_cookie_from_script() -> None:
    from harness.service.ui import environment

    assert (
        "document.cookie" not in environment().loader.get_source(environment(), "base.html.j2")[0]
    )


def test_a_large_body_is_413_before_parsing(api: Harness) -> None:
    big = b"{" + b" " * (MAX_BODY + 1) + b"}"
    for headers in ({}, bearer(ADMIN)):
        headers = {**headers, "Content-Type": "application/json"}
        answer = api.client.post("/api/runs", content=big, headers=headers)
        assert answer.status_code == 413, answer.text

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // 1000 + 2):
            yield b" " * 1000

    answer = api.client.post("/api/runs", content=chunks(), headers=bearer(ADMIN))
    assert answer.status_code == 413


def test_openapi_needs_a_token_and_there_is_no_swagger_ui(api: Harness) -> None:
    assert api.client.get("/openapi.json").status_code == 401
    schema = api.client.get("/openapi.json", headers=bearer(READER))
    assert schema.status_code == 200 and "/api/lever/engage" in schema.json()["paths"]
    assert api.client.get("/docs", headers=bearer(READER)).status_code == 404
    assert "cdn" not in schema.text.lower()


def test_ui_pages_carry_csp_and_frame_headers(api: Harness) -> None:
    page = api.client.get("/", headers=bearer(READER))
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'nonce-" in csp
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert page.text.count(f'<script nonce="{nonce}">') == page.text.count("<script")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    session = api.client.post("/session", headers=bearer(READER))
    assert session.status_code == 204 and "httponly" in session.headers["set-cookie"].lower()


def _nonces(text: str) -> set[str]:
    return set(re.findall(r"'nonce-([A-Za-z0-9_-]+)'", text)) | set(
        re.findall(r'<script nonce="([A-Za-z0-9_-]+)"', text)
    )


def test_every_html_answer_carries_the_csp_and_frame_headers(api: Harness) -> None:
    """The pages, the login page the gate answers with (no token), and a run's report: each
    sends its CSP as a header (the pages: the same nonce as their <meta> copy and scripts),
    with the frame, sniffing and referrer headers."""
    run_id = api.start().json()["run_id"]
    run = api.finished(run_id)
    report = Path(api.service.store.run(run_id)["out_dir"]) / "report.html"
    report.write_text("<!doctype html><title>report</title><p>ok</p>")
    api.client.cookies.clear()
    pages = {
        "login (gate)": api.client.get("/"),
        "login (gate, a run page)": api.client.get(f"/runs/{run_id}"),
        "runs": api.client.get("/", headers=bearer(READER)),
        "run": api.client.get(f"/runs/{run['id']}", headers=bearer(READER)),
        "schedules": api.client.get("/schedules", headers=bearer(READER)),
    }
    for name, page in pages.items():
        assert page.headers["content-type"].startswith("text/html"), name
        csp = page.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'nonce-" in csp, name
        (nonce,) = _nonces(csp)
        assert _nonces(page.text) == {nonce} and "<script" in page.text, name
        assert page.headers["x-frame-options"] == "DENY", name
        assert page.headers["x-content-type-options"] == "nosniff", name
        assert page.headers["referrer-policy"] == "no-referrer", name
        assert page.headers["cache-control"] == "no-store", name
    assert pages["login (gate)"].status_code == 401
    assert pages["login (gate)"].headers["www-authenticate"] == "Bearer"
    served = api.client.get(f"/api/runs/{run_id}/report.html", headers=bearer(READER))
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/html")
    csp = served.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'self'" in csp and served.headers["x-frame-options"] == "SAMEORIGIN"
    assert served.headers["x-content-type-options"] == "nosniff"
    api_answer = api.client.get("/api/runs", headers=bearer(READER))
    assert "content-security-policy" not in api_answer.headers
    assert api_answer.headers["x-content-type-options"] == "nosniff"


def test_a_run_page_answers_the_same_for_missing_and_unauthorized(api: Harness) -> None:
    run_id = api.start().json()["run_id"]
    api.finished(run_id)
    api.client.cookies.clear()
    real = api.client.get(f"/runs/{run_id}")
    missing = api.client.get("/runs/no-such-run")
    assert real.status_code == missing.status_code == 401

    def plain(text: str) -> str:
        return re.sub(r"nonce(-|=\")[A-Za-z0-9_-]+", "nonce", text)

    assert plain(real.text) == plain(missing.text) and run_id not in real.text
    for path in (f"/api/runs/{run_id}", "/api/runs/no-such-run"):
        assert api.client.get(path).status_code == 401


def test_started_by_is_the_token_and_free_text_is_a_note(api: Harness) -> None:
    answer = api.start({**RUN, "note": "I am the CTO"})
    run = api.finished(answer.json()["run_id"])
    assert run["started_by"] == "ops" and run["note"] == "I am the CTO"
    assert api.start({**RUN, "started_by": "the CTO"}).status_code == 422


def test_a_hashed_token_works(api: Harness) -> None:
    assert api.start(RUN, headers=bearer(HASHED)).status_code == 202


def test_schedule_inputs_are_bounded(api: Harness) -> None:
    window = {"days": ["mon"], "start": "10:00", "end": "11:00"}
    many = {**NIGHTLY, "windows": [window] * 15}
    answer = api.client.post("/api/schedules", json=many, headers=bearer(OPERATOR))
    assert answer.status_code == 422 and "windows" in answer.text
    long_jitter = {**NIGHTLY, "jitter": "30d"}
    assert (
        api.client.post("/api/schedules", json=long_jitter, headers=bearer(OPERATOR)).status_code
        == 422
    )


# --- the safety lever ----------------------------------------------------------------------


def test_the_lever_stops_refuses_and_needs_an_admin_to_release(api: Harness) -> None:
    api.hold()
    running = api.start().json()["run_id"]
    reason = {"reason": "prod incident INC-42"}
    for token in (OPERATOR, READER):
        assert (
            api.client.post("/api/lever/engage", json=reason, headers=bearer(token)).status_code
            == 403
        )
    engaged = api.client.post("/api/lever/engage", json=reason, headers=bearer(SAFETY))
    assert engaged.status_code == 200, engaged.text
    assert engaged.json()["stop_all"]["cancelled"] == [running]
    assert api.finished(running)["status"] == "cancelled"
    before = api.service.store.counts()
    refused = api.start()
    assert refused.status_code == 423 and "INC-42" in refused.json()["detail"]["message"]
    assert unchanged(api, before)
    assert "SAFETY LEVER ENGAGED" in api.client.get("/schedules", headers=bearer(READER)).text
    assert api.client.get("/api/lever", headers=bearer(READER)).json()["engaged"] is True
    release = api.client.post("/api/lever/release", json={"reason": "resolved"},
                              headers=bearer(OPERATOR))  # fmt: skip
    assert release.status_code == 403 and release.json()["detail"]["rule"] == "role"
    no_reason = api.client.post("/api/lever/release", json={}, headers=bearer(ADMIN))
    assert no_reason.status_code == 422
    ok = api.client.post("/api/lever/release", json={"reason": "resolved"}, headers=bearer(ADMIN))
    assert ok.status_code == 200 and api.start().status_code == 202
    actions = audit(api)
    assert ("root", "lever.release", "ok") in actions and (
        "on-call",
        "lever.engage",
        "ok",
    ) in actions
    assert ("ops", "POST /api/lever/release", "denied") in actions


def test_the_lever_survives_a_restart_and_the_scheduler_skips_while_engaged(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(settings_for(base), run_fn=FakeRunner())) as client:
        reason = {"reason": "freeze for the release"}
        assert (
            client.post("/api/lever/engage", json=reason, headers=bearer(ADMIN)).status_code == 200
        )
        assert (
            client.post("/api/schedules", json=NIGHTLY, headers=bearer(OPERATOR)).status_code == 201
        )
    monkeypatch.setattr(
        scheduler_module, "due",
        lambda s, last, now: SimpleNamespace(run_at=datetime.now(UTC), missed=[]),
    )  # fmt: skip
    with TestClient(
        create_app(settings_for(base, scheduler_tick=3600), run_fn=FakeRunner())
    ) as client:
        h = Harness(client, FakeRunner())
        assert h.start().status_code == 423
        (event,) = client.portal.call(h.service.scheduler.tick, time.time())  # type: ignore[union-attr]
        assert event["outcome"] == "skipped" and event["run_id"] is None
        detail = h.service.store.schedule_events("nightly")[0]["detail"]
        assert "safety lever is engaged" in detail and "freeze for the release" in detail
        assert ("scheduler", "schedule.skipped", "denied") in audit(h)


def test_a_global_guard_engages_the_lever(api: Harness) -> None:
    condition = GuardSpec(name="prod-paging", alert="ProdPaging")

    async def tripped(conditions: list[GuardSpec], targets: list) -> guards.Trip:
        return guards.Trip("prod-paging", time.time(), {"x": 1}, "staging-a", "alert firing")

    async def watch_once() -> None:
        with anyio.move_on_after(0.5):
            await api.service.lever.watch([condition], 0.05, check=tripped)

    api.client.portal.call(watch_once)  # type: ignore[union-attr]
    state = api.service.lever.state()
    assert state["engaged"] and state["by"] == "guard:prod-paging"
    assert ("guard:prod-paging", "lever.engage", "ok") in audit(api)
    assert api.start().status_code == 423


# --- roles and policy ----------------------------------------------------------------------


def test_a_policy_refusal_is_403_naming_the_rule_changes_nothing_and_is_audited(
    api: Harness,
) -> None:
    before = api.service.store.counts()
    answer = api.start({"scenarios": ["QUICK-001"], "target": "staging-b"}, headers=bearer(TEAM))
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"]["rule"] == "targets"
    assert "staging-b" in answer.json()["detail"]["message"]
    schedule = api.client.post("/api/schedules", json=NIGHTLY, headers=bearer(TEAM))
    assert schedule.status_code == 403 and schedule.json()["detail"]["rule"] == "may_schedule"
    assert unchanged(api, before) and api.runner.calls == []
    denied = [e for e in api.service.store.audit_entries() if e["outcome"] == "denied"]
    assert [e["token"] for e in denied] == ["team-a", "team-a"]
    assert "targets" in denied[1]["detail"] and denied[1]["client"]
    api.hold()
    assert api.start(RUN, headers=bearer(TEAM)).status_code == 202
    capped = api.start({**RUN, "target": "staging-a"}, headers=bearer(TEAM))
    assert capped.status_code == 403 and capped.json()["detail"]["rule"] == "max_concurrent_runs"


def test_admin_and_operator_differ(api: Harness) -> None:
    assert (
        api.client.post("/api/schedules", json=NIGHTLY, headers=bearer(HASHED)).status_code == 201
    )
    other = api.client.delete("/api/schedules/nightly", headers=bearer(OPERATOR))
    assert other.status_code == 403 and other.json()["detail"]["rule"] == "owner"
    replace = api.client.put("/api/schedules/nightly", json=NIGHTLY, headers=bearer(OPERATOR))
    assert replace.status_code == 403
    assert api.client.get("/api/audit", headers=bearer(OPERATOR)).status_code == 403
    assert api.client.get("/api/tokens", headers=bearer(OPERATOR)).status_code == 403
    tokens = api.client.get("/api/tokens", headers=bearer(ADMIN)).json()
    assert {t["name"]: t["role"] for t in tokens}["on-call"] == "safety"
    assert all("secret" not in str(t) for t in tokens)
    assert api.client.delete("/api/schedules/nightly", headers=bearer(ADMIN)).status_code == 204
    entries = api.client.get("/api/audit", headers=bearer(ADMIN)).json()
    assert [(e["action"], e["outcome"]) for e in entries[:3]] == [
        ("schedule.delete", "ok"),
        ("PUT /api/schedules/nightly", "denied"),
        ("DELETE /api/schedules/nightly", "denied"),
    ]
    # the safety role stops and engages, never injects
    assert api.start(headers=bearer(SAFETY)).status_code == 403
    assert api.client.post("/api/stop-all", headers=bearer(SAFETY)).status_code == 200
