"""Around the runs: the scheduler's decisions (fired, skipped, missed, queued), schedules
CRUD and the schedules file, crash recovery at start, shutdown, the webhook summary, and an
emergency stop that does not wait for a stuck run."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness import runner
from harness.config import load_target
from harness.faults.journal import Journal
from harness.service import manager as manager_module
from harness.service import scheduler as scheduler_module
from harness.service.app import create_app
from harness.service.store import Store
from harness.yamlfile import FileProblems
from tests.service.fakes import OPERATOR, FakeRunner, bearer, service_files, settings_for
from tests.service.test_api import Harness, wait_for

OPS = bearer(OPERATOR)
NIGHTLY = {
    "name": "nightly",
    "cron": "0 3 * * *",
    "scenarios": ["QUICK-001"],
    "target": "staging-a",
}


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def serve(base: Path, runner: FakeRunner | None = None, schedules: str = "", **settings: Any):
    config = service_files(base, targets=("staging-a", "staging-b"), schedules=schedules)
    app = create_app(settings_for(base, config, **settings), run_fn=runner or FakeRunner())
    return TestClient(app)


def decide(
    monkeypatch: pytest.MonkeyPatch, run_at: datetime | None, missed: list[datetime]
) -> None:
    """The pure schedule module's answer, fixed (its own tests are the other branch's)."""
    monkeypatch.setattr(
        scheduler_module, "due", lambda s, last, now: SimpleNamespace(run_at=run_at, missed=missed)
    )


# --- scheduler -----------------------------------------------------------------------------


def test_the_scheduler_records_missed_and_fired(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(base, scheduler_tick=3600) as client:
        h = Harness(client, FakeRunner())
        assert client.post("/api/schedules", json=NIGHTLY, headers=OPS).status_code == 201
        now = datetime.now(UTC)
        decide(
            monkeypatch,
            now,
            [datetime(2026, 1, 1, 3, tzinfo=UTC), datetime(2026, 1, 2, 3, tzinfo=UTC)],
        )
        events = client.portal.call(h.service.scheduler.tick, time.time())  # type: ignore[union-attr]
        assert [e["outcome"] for e in events] == ["missed", "missed", "fired"]
        run_id = events[-1]["run_id"]
        run = h.finished(run_id)
        assert run["status"] == "passed" and run["schedule"] == "nightly"
        stored = client.get("/api/schedules/nightly", headers=OPS).json()
        assert [e["outcome"] for e in stored["events"]] == ["fired", "missed", "missed"]
        metrics = client.get("/metrics", headers=OPS).text
        assert 'harness_schedule_runs_total{outcome="missed",schedule="nightly"} 2.0' in metrics
        assert 'harness_schedule_last_success_timestamp_seconds{schedule="nightly"}' in metrics


def test_forbid_skips_a_busy_target_and_queue_waits_for_it(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = FakeRunner()
    with serve(base, runner, scheduler_tick=3600) as client:
        h = Harness(client, runner)
        held = h.hold()
        first = h.start().json()["run_id"]
        client.post("/api/schedules", json=NIGHTLY, headers=OPS)
        client.post(
            "/api/schedules",
            json={**NIGHTLY, "name": "queued", "concurrency": "queue"},
            headers=OPS,
        )
        decide(monkeypatch, datetime.now(UTC), [])
        events = client.portal.call(h.service.scheduler.tick, time.time())  # type: ignore[union-attr]
        outcome = {e["schedule"]: e for e in events}
        assert outcome["nightly"]["outcome"] == "skipped" and outcome["nightly"]["run_id"] is None
        assert first in h.service.store.schedule_events("nightly")[0]["detail"]
        queued = outcome["queued"]["run_id"]
        assert outcome["queued"]["outcome"] == "fired" and h.run(queued)["status"] == "queued"
        h.release(held)
        assert h.finished(first)["status"] == "passed"
        assert h.finished(queued)["status"] == "passed"


def test_a_schedule_naming_what_no_longer_exists_is_skipped(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(base, scheduler_tick=3600) as client:
        h = Harness(client, FakeRunner())
        h.service.store.put_schedule("stale", {**NIGHTLY, "name": "stale", "target": "gone"}, "api")
        decide(monkeypatch, datetime.now(UTC), [])
        (event,) = client.portal.call(h.service.scheduler.tick, time.time())  # type: ignore[union-attr]
        assert event["outcome"] == "skipped"
        assert "unknown target 'gone'" in h.service.store.schedule_events("stale")[0]["detail"]


# --- schedules CRUD and file ---------------------------------------------------------------


def test_schedules_crud(base: Path) -> None:
    with serve(base) as client:
        h = Harness(client, FakeRunner())
        created = client.post("/api/schedules", json=NIGHTLY, headers=OPS)
        assert created.status_code == 201 and created.json()["next_fire"].endswith("03:00:00+00:00")
        assert client.post("/api/schedules", json=NIGHTLY, headers=OPS).status_code == 409
        before = h.service.store.counts()
        bad = [({**NIGHTLY, "name": "other"}, "name"), ({**NIGHTLY, "colour": "red"}, "colour"),
               ({**NIGHTLY, "scenarios": ["NOPE-1"]}, "scenarios")]  # fmt: skip
        for body, field in bad:
            answer = client.put("/api/schedules/nightly", json=body, headers=OPS)
            assert answer.status_code == 422, answer.text
            assert any(field in ".".join(map(str, e["loc"])) for e in answer.json()["detail"])
        assert h.service.store.counts() == before
        replaced = client.put(
            "/api/schedules/nightly", json={**NIGHTLY, "cron": "0 4 * * *"}, headers=OPS
        )
        assert replaced.status_code == 200 and replaced.json()["spec"]["cron"] == "0 4 * * *"
        assert [s["name"] for s in client.get("/api/schedules", headers=OPS).json()] == ["nightly"]
        assert client.delete("/api/schedules/nightly", headers=OPS).status_code == 204
        assert client.get("/api/schedules/nightly", headers=OPS).status_code == 404
        actions = [e["action"] for e in h.service.store.audit_entries()]
        assert actions == ["schedule.delete", "schedule.replace", "schedule.create"]


FILE = """\
schedules:
  - name: tuesday-game-day
    cron: "0 10 * * 2"
    scenarios: [QUICK-001]
    target: staging-a
"""


def test_file_schedules_load_at_start_and_are_read_only_here(base: Path) -> None:
    with serve(base, schedules=FILE) as client:
        (row,) = client.get("/api/schedules", headers=OPS).json()
        assert row["name"] == "tuesday-game-day" and row["source"] == "file"
        assert client.delete("/api/schedules/tuesday-game-day", headers=OPS).status_code == 409
        body = {**NIGHTLY, "name": "tuesday-game-day"}
        assert (
            client.put("/api/schedules/tuesday-game-day", json=body, headers=OPS).status_code == 409
        )


def test_a_malformed_schedules_file_names_file_line_and_field(base: Path) -> None:
    bad = FILE.replace('    cron: "0 10 * * 2"\n', '    cron: "0 10 * * 2"\n    colour: red\n')
    with pytest.raises(FileProblems, match=r"schedules.yaml:4 schedules\[0\].colour: unknown key"):
        serve(base, schedules=bad)


# --- crash recovery and shutdown -----------------------------------------------------------


def test_a_run_a_dead_service_left_running_is_marked_interrupted_at_start(base: Path) -> None:
    config = service_files(base, targets=("staging-a", "staging-b"))
    settings = settings_for(base, config)
    settings.data_dir.mkdir(parents=True)
    target = load_target(base / "staging-a.yaml")
    Store(settings.db_url()).add_run({
        "id": "dead-run", "status": "running", "created_at": time.time(), "started_by": "x",
        "targets": [target.model_dump(mode="json")], "scenarios": ["QUICK-001"], "request": {},
        "out_dir": str(settings.runs_dir() / "dead-run"), "reason": ""})  # fmt: skip
    Journal.for_target(target).add(
        "dead-run-QUICK-001-f0", {"kind": "toxic", "spec": {}, "state": {}}
    )
    with TestClient(create_app(settings, run_fn=FakeRunner())) as client:
        run = client.get("/api/runs/dead-run", headers=OPS).json()
    assert run["status"] == "interrupted"
    assert "recovered at restart" in run["reason"]
    # this target's Toxiproxy does not exist: the heal cannot be proven, and the entry stays
    assert [e["key"] for e in Journal.for_target(target).entries()] == ["dead-run-QUICK-001-f0"]


def test_stopping_the_service_interrupts_its_runs(base: Path) -> None:
    runner = FakeRunner()
    with serve(base, runner) as client:
        h = Harness(client, runner)
        h.hold()
        run_id = h.start().json()["run_id"]
        wait_for(lambda: h.run(run_id)["status"] == "running", "the run to start")
        store = h.service.settings.db_url()
    row = Store(store).run(run_id)
    assert row["status"] == "interrupted" and "service stopped" in row["reason"]  # type: ignore[index]


def test_stop_all_does_not_wait_for_a_stuck_run(base: Path) -> None:
    runner = FakeRunner()
    with serve(base, runner) as client:
        h = Harness(client, runner)
        held = h.hold()
        runner.stubborn = True
        run_id = h.start().json()["run_id"]
        inject = [{"scenario": "QUICK-001", "phase": "inject"}]
        wait_for(lambda: h.run(run_id).get("progress", {}).get("current") == inject, "inject")
        started = time.monotonic()
        answer = client.post("/api/stop-all", headers=OPS).json()
        assert time.monotonic() - started < 2.5
        assert answer["cancelled"] == [run_id]
        assert h.run(run_id)["status"] == "running"  # still stuck, yet every target was healed
        h.release(held)
        assert h.finished(run_id)["status"] == "cancelled"


# --- webhook summary ------------------------------------------------------------------------


class Receiver:
    """A local HTTP endpoint that keeps what is POSTed to it."""

    def __init__(self, status: int = 200, delay: float = 0.0):
        received = self.received = []  # type: list[dict[str, Any]]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                time.sleep(delay)
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_the_run_summary_is_posted_slack_style(base: Path, receiver: Receiver) -> None:
    runner = FakeRunner(verdict="failed")
    with serve(
        base, runner, webhook_url=receiver.url, public_url="https://harness.example"
    ) as client:
        h = Harness(client, runner)
        run_id = h.start({"scenarios": ["QUICK-001", "QUICK-002"], "target": "staging-a"}).json()[
            "run_id"
        ]
        assert h.finished(run_id)["status"] == "failed"
        (payload,) = wait_for(lambda: receiver.received, "the webhook POST")
        assert run_id in payload["text"] and "failed" in payload["text"]
        body = json.dumps(payload["blocks"])
        assert "QUICK-001: failed" in body and "a check said no" in body
        assert f"https://harness.example/runs/{run_id}" in body
        assert h.service.store.run(run_id)["notify_error"] is None


def test_a_webhook_that_fails_is_recorded_and_the_run_stands(base: Path) -> None:
    down = Receiver(status=500)
    try:
        with serve(base, webhook_url=down.url) as client:
            h = Harness(client, FakeRunner())
            run_id = h.start().json()["run_id"]
            assert h.finished(run_id)["status"] == "passed"
            wait_for(lambda: h.service.store.run(run_id)["notify_error"], "the notify error")
            assert "500" in h.service.store.run(run_id)["notify_error"]
    finally:
        down.close()


def test_a_concluded_run_shows_its_results_while_its_summary_is_still_posting(base: Path) -> None:
    slow = Receiver(delay=1.5)
    try:
        with serve(base, webhook_url=slow.url) as client:
            h = Harness(client, FakeRunner())
            run_id = h.start().json()["run_id"]
            run = h.finished(run_id)  # concluded; the summary is still on its way
            assert run_id in h.service.manager.active and not slow.received
            assert run["status"] == "passed" and run["ended_at"] is not None
            assert [r["scenario_id"] for r in run["results"]] == ["QUICK-001"]
            assert run["results"][0]["checks"][0]["status"] == "pass"
    finally:
        slow.close()


# --- the report ----------------------------------------------------------------------------


def test_the_report_is_written_by_the_runners_one_function_quietly(
    base: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The service writes a run's report with `runner.write_run_report`, as `harness run`
    does, without announcing it on the terminal; a report that fails leaves the run as it
    was."""
    calls: list[tuple[Path, dict[str, Any]]] = []

    async def spy(out_dir: Path, **options: Any) -> Path | None:
        calls.append((out_dir, options))
        return await runner.write_run_report(out_dir, **options)

    monkeypatch.setattr(manager_module, "write_run_report", spy)
    with serve(base, write_reports=True) as client:
        h = Harness(client, FakeRunner())
        run_id = h.start().json()["run_id"]
        wait_for(lambda: run_id not in h.service.manager.active, "the run and its report", 60)
        out = Path(h.service.store.run(run_id)["out_dir"])  # type: ignore[index]
        assert calls == [(out, {"announce": False})]
        assert (out / "report.html").is_file() and (out / "coverage.json").is_file()

        def broken(*_: Any, **__: Any) -> None:
            raise OSError("disk full")

        monkeypatch.setattr("harness.report.build.write_report", broken)
        failed = h.start().json()["run_id"]
        wait_for(lambda: failed not in h.service.manager.active, "the second run", 60)
        assert h.finished(failed)["status"] == "passed"
        assert not (Path(h.service.store.run(failed)["out_dir"]) / "report.html").exists()  # type: ignore[index]
    err = capfd.readouterr().err
    assert "report:" not in err and "report not written" not in err
