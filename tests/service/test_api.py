"""The API over a wire-less run function: runs start, progress, land in history with their
verdict, cancel, refuse a busy target, validate bodies (writing nothing when they are bad),
demand tokens, keep downloads inside the data dir, and audit what they change."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from harness.config import load_target
from harness.faults.journal import state_dir
from harness.faults.lock import TargetLock
from harness.service import guards
from harness.service.app import create_app
from tests.service.fakes import (
    ADMIN,
    OPERATOR,
    READER,
    FakeRunner,
    bearer,
    service_files,
    settings_for,
)

OPS = bearer(OPERATOR)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Harness:
    def __init__(self, client: TestClient, runner: FakeRunner):
        self.client = client
        self.runner = runner
        self.service = client.app.state.service  # type: ignore[attr-defined]

    def start(self, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        body = body or {"scenarios": ["QUICK-001"], "target": "staging-a"}
        return self.client.post("/api/runs", json=body, headers=OPS if headers is None else headers)

    def run(self, run_id: str) -> dict[str, Any]:
        return self.client.get(f"/api/runs/{run_id}", headers=OPS).json()

    def finished(self, run_id: str, timeout: float = 10.0) -> dict[str, Any]:
        return wait_for(
            lambda: (r := self.run(run_id))["status"] not in ("queued", "running") and r,
            f"run {run_id} to finish",
            timeout,
        )

    def hold(self) -> anyio.Event:
        """The next runs wait in their inject phase until the event is set."""
        event = self.client.portal.call(anyio.Event)  # type: ignore[union-attr]
        self.runner.hold = event
        return event

    def release(self, event: anyio.Event) -> None:
        self.client.portal.call(event.set)  # type: ignore[union-attr]


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    runner = FakeRunner()
    config = service_files(tmp_path, targets=("staging-a", "staging-b"))
    app = create_app(settings_for(tmp_path, config), run_fn=runner)
    with TestClient(app) as client:
        yield Harness(client, runner)


def test_a_run_lands_in_history_with_its_verdict(api: Harness) -> None:
    answer = api.start({"scenarios": ["QUICK-001", "QUICK-002"], "target": "staging-a"})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    run = api.finished(run_id)
    assert run["status"] == "passed"
    assert [r["scenario_id"] for r in run["results"]] == ["QUICK-001", "QUICK-002"]
    assert run["targets"] == ["staging-a"]
    history = api.client.get("/api/runs", params={"scenario": "QUICK-002"}, headers=OPS).json()
    assert [r["id"] for r in history["runs"]] == [run_id] and history["total"] == 1
    none = api.client.get("/api/runs", params={"verdict": "failed"}, headers=OPS).json()
    assert none["total"] == 0


def test_live_progress_shows_the_phase_of_the_scenario_in_flight(api: Harness) -> None:
    held = api.hold()
    run_id = api.start().json()["run_id"]
    inject = [{"scenario": "QUICK-001", "phase": "inject"}]
    run = wait_for(
        lambda: (r := api.run(run_id)).get("progress", {}).get("current") == inject and r,
        "the inject phase",
    )
    assert run["status"] == "running"
    assert run["progress"]["current"] == [{"scenario": "QUICK-001", "phase": "inject"}]
    api.release(held)
    assert api.finished(run_id)["status"] == "passed"


def test_events_replay_phases_and_results_and_end(api: Harness) -> None:
    run_id = api.start().json()["run_id"]
    with api.client.stream("GET", f"/api/runs/{run_id}/events", headers=OPS) as stream:
        text = "".join(stream.iter_text())
    kinds = [
        line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("event:")
    ]
    assert kinds[-1] == "end"
    assert "result" in kinds and kinds.count("phase") == 6, kinds
    after = api.client.get(f"/api/runs/{run_id}/events", headers=OPS).text
    assert "event: end" in after and '"status": "passed"' in after


def test_cancel_heals_then_concludes_cancelled(api: Harness) -> None:
    api.hold()
    run_id = api.start().json()["run_id"]
    wait_for(lambda: api.run(run_id).get("progress", {}).get("current"), "the run to be in a phase")
    answer = api.client.post(f"/api/runs/{run_id}/cancel", headers=OPS)
    assert answer.status_code == 202
    run = api.finished(run_id)
    assert run["status"] == "cancelled" and "cancelled by ops" in run["reason"]
    evidence = api.client.get(f"/api/runs/{run_id}/evidence.json", headers=OPS).json()
    assert evidence["interrupted"] is True
    again = api.client.post(f"/api/runs/{run_id}/cancel", headers=OPS)
    assert again.status_code == 409


def test_a_busy_target_is_409_and_writes_nothing(api: Harness) -> None:
    held = api.hold()
    first = api.start({"scenarios": ["QUICK-001"], "target": "staging-a"}).json()["run_id"]
    before = api.service.store.counts()
    busy = api.start({"scenarios": ["QUICK-002"], "target": "staging-a"})
    assert busy.status_code == 409 and first in busy.json()["detail"]
    assert api.service.store.counts() == before
    other = api.start({"scenarios": ["QUICK-002"], "target": "staging-b"})
    assert other.status_code == 202
    api.release(held)
    assert api.finished(first)["status"] == "passed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scenarios": ["QUICK-001"], "colour": "red"}, "colour"),
        ({"scenarios": []}, "scenarios"),
        ({"scenarios": "some"}, "scenarios"),
        ({"scenarios": ["NOPE-404"]}, "scenarios"),
        ({"scenarios": ["QUICK-001"], "target": "nowhere"}, "target"),
        ({"scenarios": ["QUICK-001"], "slots": 0}, "slots"),
        ({"scenarios": ["QUICK-001"], "guards": [{"name": "g"}]}, "guards"),
        ({"target": "staging-a"}, "scenarios"),
    ],
)
def test_a_bad_body_is_422_naming_the_field_and_writes_nothing(
    api: Harness, body: dict[str, Any], field: str
) -> None:
    before = api.service.store.counts()
    answer = api.start(body)
    assert answer.status_code == 422, answer.text
    locations = [".".join(str(p) for p in e["loc"]) for e in answer.json()["detail"]]
    assert any(field in loc for loc in locations), locations
    assert api.service.store.counts() == before
    assert api.runner.calls == []


def test_mutations_need_a_mutating_token_and_change_nothing_without(api: Harness) -> None:
    before = api.service.store.counts()
    for headers, status in (({}, 401), (bearer("wrong-secret-123"), 401), (bearer(READER), 403)):
        assert api.start(headers=headers).status_code == status
        assert api.client.post("/api/stop-all", headers=headers).status_code == status
        schedule = {"name": "x", "cron": "* * * * *", "scenarios": ["QUICK-001"]}
        assert (
            api.client.post("/api/schedules", json=schedule, headers=headers).status_code == status
        )
    after = api.service.store.counts()
    assert {**after, "audit_log": 0} == {**before, "audit_log": 0}
    denied = api.service.store.audit_entries()
    assert len(denied) == 9 and {e["outcome"] for e in denied} == {"denied"}
    assert {e["token"] for e in denied} == {"(none)", "viewer"}
    assert all(e["client"].startswith("testclient:") for e in denied)
    assert api.runner.calls == []
    assert api.client.get("/api/runs").status_code == 401
    assert api.client.get("/api/runs", headers=bearer(READER)).status_code == 200
    assert api.start(headers=bearer(ADMIN)).status_code == 202


def test_every_accepted_mutation_is_audited_with_token_and_body_digest(api: Harness) -> None:
    body = {"scenarios": ["QUICK-001"], "target": "staging-b"}
    answer = api.client.post(
        "/api/runs", content=json.dumps(body), headers={**OPS, "Content-Type": "application/json"}
    )
    run_id = answer.json()["run_id"]
    api.finished(run_id)
    api.client.post("/api/stop-all", headers=bearer(ADMIN))
    entries = api.service.store.audit_entries()
    assert [(e["token"], e["action"]) for e in entries] == [
        ("root", "stop-all"),
        ("ops", "run.start"),
    ]
    assert entries[1]["target"] == "staging-b"
    assert entries[1]["body_digest"] == hashlib.sha256(json.dumps(body).encode()).hexdigest()


def test_downloads_and_the_bundle(api: Harness) -> None:
    run_id = api.start().json()["run_id"]
    api.finished(run_id)
    evidence = api.client.get(f"/api/runs/{run_id}/evidence.json", headers=OPS)
    assert evidence.status_code == 200 and evidence.json()["run_id"] == run_id
    junit = api.client.get(f"/api/runs/{run_id}/junit.xml", headers=OPS)
    assert junit.status_code == 200 and "<testsuite" in junit.text
    assert api.client.get(f"/api/runs/{run_id}/report.html", headers=OPS).status_code == 404
    bundle = api.client.get(f"/api/runs/{run_id}/bundle.tar.gz", headers=OPS)
    with tarfile.open(fileobj=io.BytesIO(bundle.content)) as tar:
        assert f"{run_id}/evidence.json" in tar.getnames()


def test_downloads_cannot_leave_the_data_dir(api: Harness, tmp_path: Path) -> None:
    for path in (
        "/api/runs/..%2F..%2F..%2Fetc/evidence.json",
        "/api/runs/%2e%2e/evidence.json",
        "/api/runs/../../etc/passwd",
        "/api/runs/x/..%2F..%2Fservice.yaml",
    ):
        answer = api.client.get(path, headers=OPS)
        assert answer.status_code in (404, 422), (path, answer.status_code)
        assert "scenarios:" not in answer.text
    run_id = api.start().json()["run_id"]
    api.finished(run_id)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evidence.json").write_text('{"secret": 1}')
    api.service.store.update_run(run_id, out_dir=str(outside))
    assert api.client.get(f"/api/runs/{run_id}/evidence.json", headers=OPS).status_code == 404
    link = api.service.settings.runs_dir() / "link"
    link.symlink_to(outside)
    api.service.store.update_run(run_id, out_dir=str(link))
    assert api.client.get(f"/api/runs/{run_id}/evidence.json", headers=OPS).status_code == 404


def test_an_unevaluable_guard_aborts_the_run(api: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    # the grace a blind guard gets is test_guards.py's; here it trips at its first check
    monkeypatch.setattr(guards, "BLIND_GRACE_S", 0.0)
    api.hold()
    body = {"scenarios": ["QUICK-001"], "target": "staging-a",
            "guards": [{"name": "slo", "promql": "vector(1)"}]}  # fmt: skip
    run_id = api.start(body).json()["run_id"]
    run = api.finished(run_id, timeout=60)
    assert run["status"] == "aborted", run
    assert run["aborted_by"]["guard"] == "slo" and run["aborted_by"]["unevaluable"] is True
    assert "could not evaluate" in run["aborted_by"]["detail"]
    evidence = api.client.get(f"/api/runs/{run_id}/evidence.json", headers=OPS).json()
    assert evidence["aborted_by"]["guard"] == "slo"
    metrics = api.client.get("/metrics", headers=OPS).text
    assert 'harness_guard_aborts_total{guard="slo"} 1.0' in metrics
    assert 'harness_runs_total{verdict="aborted"} 1.0' in metrics
    entries = api.service.store.audit_entries()
    assert [(e["token"], e["action"], e["target"]) for e in entries][0] == (
        "guard:slo",
        "run.abort",
        run_id,
    )


def test_metrics_name_what_the_alert_rules_use(api: Harness) -> None:
    api.finished(api.start().json()["run_id"])
    text = api.client.get("/metrics", headers=OPS).text
    for name in (
        'harness_runs_total{verdict="passed"} 1.0',
        "harness_run_duration_seconds_count 1.0",
        'harness_scenario_duration_seconds_count{scenario="QUICK-001"} 1.0',
        'harness_faults_active{target="staging-a"} 0.0',
        "harness_runs_active 0.0",
    ):
        assert name in text, name
    assert api.client.get("/metrics").status_code == 401


def test_stop_all_cancels_runs_and_reports_every_target(api: Harness) -> None:
    api.hold()
    run_id = api.start({"scenarios": ["QUICK-001"], "target": "staging-a"}).json()["run_id"]
    wait_for(lambda: api.run(run_id).get("progress", {}).get("current"), "the run in a phase")
    answer = api.client.post("/api/stop-all", headers=OPS).json()
    assert answer["cancelled"] == [run_id]
    assert sorted(t["target"] for t in answer["targets"]) == ["staging-a", "staging-b"]
    # these targets' Toxiproxy does not exist: nothing can be proven, and the answer says so
    assert answer["clean"] is False and all(t["errors"] for t in answer["targets"])
    assert api.finished(run_id)["status"] == "cancelled"


def test_reads_are_open_to_loopback_only_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    config = service_files(tmp_path)
    for open_reads, client, status in (
        (True, ("127.0.0.1", 50000), 200),
        (True, ("::1", 50000), 200),
        (True, ("192.0.2.7", 50000), 401),
        (False, ("127.0.0.1", 50000), 401),
    ):
        settings = settings_for(tmp_path, config, open_reads_on_loopback=open_reads)
        with TestClient(create_app(settings, run_fn=FakeRunner()), client=client) as c:
            assert c.get("/api/runs").status_code == status, (open_reads, client)
            assert c.get("/").status_code == status
            body = {"scenarios": ["QUICK-001"]}
            assert c.post("/api/runs", json=body).status_code == 401  # mutations never open


def test_a_target_locked_by_another_process_is_409(api: Harness, tmp_path: Path) -> None:
    target = load_target(tmp_path / "staging-a.yaml")
    before = api.service.store.counts()
    with TargetLock(state_dir(target), "cli-run-42", target.name):
        answer = api.start({"scenarios": ["QUICK-001"], "target": "staging-a"})
    assert answer.status_code == 409 and "cli-run-42" in answer.json()["detail"]
    assert api.service.store.counts() == before
    assert api.start({"scenarios": ["QUICK-001"], "target": "staging-a"}).status_code == 202
