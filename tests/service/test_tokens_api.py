"""The tokens API (admin only): every token's effective permissions and policy, never a
secret; a reload of the tokens file that takes effect at once, validated first (a bad file is
a 422 naming file, line and field, and nothing changes), audited either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.service.app import create_app
from tests.service.fakes import ADMIN, OPERATOR, FakeRunner, bearer, service_files
from tests.service.fakes import settings_for as base_settings
from tests.service.test_api import Harness
from tests.service.test_hardening import HASHED, SAFETY, TEAM, TOKENS_FILE, audit

RUN_A = {"scenarios": ["QUICK-001"], "target": "staging-a"}
RUN_B = {"scenarios": ["QUICK-001"], "target": "staging-b"}
NEW = "team-b-secret-00001"
HASHED_ENTRY = TOKENS_FILE[TOKENS_FILE.index("  - name: hashed") :]
CHANGED = f"""\
tokens:
  - name: team-a
    secret: {TEAM}
    role: operator
    policy:
      targets: [staging-b]
  - name: team-b
    secret: {NEW}
    role: operator
    policy: {{scenarios: [QUICK-*]}}
{HASHED_ENTRY}"""
BAD = f"""\
tokens:
  - name: team-a
    secret: {TEAM}
    role: operator
  - name: team-b
    secret: {NEW}
    role: boss
  - name: team-c
    secret: tiny7
    role: read
"""


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def serve(base: Path, tokens_file: str, **overrides: Any) -> TestClient:
    path = base / "tokens.yaml"
    path.write_text(tokens_file)
    config = service_files(base, targets=("staging-a", "staging-b"))
    settings = base_settings(base, config, tokens_file=path, **overrides)
    return TestClient(create_app(settings, run_fn=FakeRunner()))


@pytest.fixture
def api(base: Path) -> Iterator[Harness]:
    with serve(base, TOKENS_FILE) as client:
        yield Harness(client, FakeRunner())


def tokens(h: Harness) -> dict[str, dict[str, Any]]:
    answer = h.client.get("/api/tokens", headers=bearer(ADMIN))
    assert answer.status_code == 200, answer.text
    return {t["name"]: t for t in answer.json()}


def reload(h: Harness, secret: str = ADMIN) -> Any:
    return h.client.post("/api/tokens/reload", headers=bearer(secret))


def test_admins_read_every_tokens_effective_policy_and_never_a_secret(api: Harness) -> None:
    for secret in (OPERATOR, SAFETY, TEAM):
        assert api.client.get("/api/tokens", headers=bearer(secret)).status_code == 403
    known = tokens(api)
    assert sorted(known) == ["hashed", "on-call", "ops", "root", "team-a", "viewer"]
    team = known["team-a"]
    assert team["role"] == "operator" and team["source"] == "file"
    assert team["may"] == ["read", "stop_all", "run", "cancel"]  # may_schedule: false
    policy = team["policy"]
    assert policy["targets"] == ["staging-a"] and policy["max_concurrent_runs"] == 1
    assert policy["scenarios"] is None and policy["timezone"] == "UTC"  # defaults spelled out
    assert known["on-call"]["may"] == ["read", "stop_all", "engage_lever"]
    assert known["viewer"]["may"] == ["read"] and known["viewer"]["source"] == "environment"
    assert "manage_tokens" in known["root"]["may"] and "schedule" in known["ops"]["may"]
    text = api.client.get("/api/tokens", headers=bearer(ADMIN)).text
    for secret in (ADMIN, OPERATOR, TEAM, SAFETY, HASHED, "scrypt$", "secret"):
        assert secret not in text


def test_a_reload_takes_the_new_file_at_once_and_is_audited(api: Harness, base: Path) -> None:
    api.hold()
    assert api.start(RUN_A, headers=bearer(TEAM)).status_code == 202  # team-a, as it was
    assert api.client.get("/api/lever", headers=bearer(SAFETY)).status_code == 200  # cached
    assert api.client.get("/api/lever", headers=bearer(NEW)).status_code == 401
    (base / "tokens.yaml").write_text(CHANGED)
    answer = reload(api)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["added"] == ["team-b"] and body["removed"] == ["on-call"]
    assert body["changed"] == ["team-a (policy)"]
    assert {t["name"] for t in body["tokens"]} == {"team-a", "team-b", "hashed", "root", "ops",
                                                   "viewer"}  # fmt: skip
    assert api.client.get("/api/lever", headers=bearer(SAFETY)).status_code == 401  # removed
    assert api.client.get("/api/lever", headers=bearer(NEW)).status_code == 200  # added
    refused = api.start(RUN_A, headers=bearer(TEAM))
    assert refused.status_code == 403 and refused.json()["detail"]["rule"] == "targets"
    # the old policy capped team-a at one run in progress; the new one does not
    assert api.start(RUN_B, headers=bearer(TEAM)).status_code == 202
    assert tokens(api)["team-a"]["may"][-1] == "schedule"
    (entry,) = [e for e in api.service.store.audit_entries() if e["action"] == "tokens.reload"]
    assert (entry["token"], entry["outcome"]) == ("root", "ok") and entry["client"]
    assert "added: team-b" in entry["detail"] and "removed: on-call" in entry["detail"]
    assert str(base / "tokens.yaml") == entry["target"]


def test_a_bad_file_is_422_naming_line_and_field_and_changes_nothing(
    api: Harness, base: Path
) -> None:
    before = tokens(api)
    (base / "tokens.yaml").write_text(BAD)
    answer = reload(api)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail["rule"] == "tokens_file"
    where = {(p["line"], p["field"]) for p in detail["problems"]}
    assert where == {(7, "tokens[1].role"), (8, "tokens[2]")}, detail
    assert "tokens.yaml:7 tokens[1].role" in detail["message"]
    assert "too short" in detail["problems"][1]["message"] and "tiny7" not in answer.text
    assert tokens(api) == before
    assert api.client.get("/api/lever", headers=bearer(NEW)).status_code == 401
    assert api.client.get("/api/lever", headers=bearer(SAFETY)).status_code == 200
    (base / "tokens.yaml").write_text("tokens: [\n")
    syntax = reload(api)
    assert syntax.status_code == 422 and syntax.json()["detail"]["problems"][0]["line"] == 2
    assert tokens(api) == before
    assert reload(api, OPERATOR).status_code == 403
    outcomes = [(e["token"], e["action"], e["outcome"]) for e in api.service.store.audit_entries()]
    assert outcomes[:3] == [("ops", "POST /api/tokens/reload", "denied"),
                            ("root", "tokens.reload", "denied"),
                            ("root", "tokens.reload", "denied")]  # fmt: skip
    assert ("root", "tokens.reload", "ok") not in audit(api)


def test_a_reload_that_would_leave_no_admin_is_refused(base: Path) -> None:
    boss = "boss-secret-000001"
    only_file = f"tokens:\n  - {{name: boss, secret: {boss}, role: admin}}\n"
    with serve(base, only_file, tokens="") as client:
        (base / "tokens.yaml").write_text(
            f"tokens:\n  - {{name: team-a, secret: {TEAM}, role: operator}}\n"
        )
        answer = client.post("/api/tokens/reload", headers=bearer(boss))
        assert answer.status_code == 422
        assert answer.json()["detail"]["problems"][0]["field"] == "tokens"
        assert "no token has role admin" in answer.json()["detail"]["message"]
        assert client.get("/api/tokens", headers=bearer(boss)).status_code == 200


def test_without_a_tokens_file_there_is_nothing_to_reload(base: Path) -> None:
    config = service_files(base)
    with TestClient(create_app(base_settings(base, config), run_fn=FakeRunner())) as client:
        answer = client.post("/api/tokens/reload", headers=bearer(ADMIN))
        assert answer.status_code == 409 and "without a tokens file" in answer.text
        (entry,) = client.app.state.service.store.audit_entries()  # type: ignore[attr-defined]
        assert (entry["token"], entry["action"], entry["outcome"]) == (
            "root",
            "tokens.reload",
            "denied",
        )
