"""The service live, as a real `harness serve` process against the session's local stack
(real nats-server, Prometheus, Alertmanager, the embedded Toxiproxy server): a run and a
scheduled run land in history; a guard aborts and everything is healed; the emergency stop
heals mid-fault within 2 s; SIGKILL mid-run → restart → interrupted, no fault left; requests
without a mutating token change nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config import Target
from harness.stack.stack import LocalStack
from tests.faults.live import toxiproxy_state
from tests.run.cli import HarnessRun, harness, long_toxic, scenarios, squash
from tests.service.fakes import OPERATOR, READER
from tests.service.live import (
    ServedHarness,
    assert_target_clean,
    harness_toxics,
    serving,
    wait_until,
)

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def served(
    local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedHarness]:
    yield from serving(tmp_path_factory.mktemp("served"), local_stack)


@pytest.fixture
def clean(clean_stack: LocalStack, target: Target, served: ServedHarness) -> Target:
    """The shared stack usable before and clean after (the session guard), the service up."""
    if served.proc is None or served.proc.poll() is not None:
        served.start()
    return target


def wait_for_toxic(target: Target) -> str:
    return wait_until(lambda: harness_toxics(target), "the run's toxic", 40)[0]


def test_a_run_started_through_the_api_passes_and_lands_in_history(
    served: ServedHarness, clean: Target
) -> None:
    run_id = served.start_run("PASS-001", note="live test")
    run = served.finished(run_id)
    assert run["status"] == "passed", run
    assert [(r["scenario_id"], r["verdict"]) for r in run["results"]] == [("PASS-001", "passed")]
    history = served.get("/api/runs", verdict="passed", scenario="PASS-001").json()
    assert run_id in [r["id"] for r in history["runs"]]
    evidence = served.get(f"/api/runs/{run_id}/evidence.json").json()
    assert evidence["started_by"] == "ops" and run["note"] == "live test"  # the token, not a claim
    assert evidence["scenarios"][0]["faults"][0]["heal"]["healed"] is True
    assert_target_clean(clean)


def test_a_guard_aborts_the_run_and_everything_is_healed(
    served: ServedHarness, clean: Target
) -> None:
    trip_at = time.time() + 6  # real Prometheus evaluates it; it turns true mid-fault
    guard = {"name": "customer-slo", "promql": f"vector(time()) > {trip_at:.0f}"}
    run_id = served.start_run("LONG-001", guards=[guard])
    wait_for_toxic(clean)
    run = served.finished(run_id, timeout=60)
    assert run["status"] == "aborted", run
    aborted = run["aborted_by"]
    assert aborted["guard"] == "customer-slo" and not aborted["unevaluable"]
    assert aborted["at"] >= trip_at and aborted["value"][0]["value"] >= trip_at
    assert "aborted by guard customer-slo" in run["reason"]
    evidence = served.get(f"/api/runs/{run_id}/evidence.json").json()
    assert evidence["aborted_by"]["guard"] == "customer-slo"
    fault = evidence["scenarios"][0]["faults"][0]
    assert fault["applied_at"] < aborted["at"] and fault["heal"]["healed"] is True
    assert_target_clean(clean)
    metrics = served.get("/metrics").text
    assert 'harness_guard_aborts_total{guard="customer-slo"} 1.0' in metrics


def test_a_guard_alert_firing_on_the_real_stack_aborts_the_run_and_heals(
    served: ServedHarness, clean: Target
) -> None:
    """The stop condition teams name: a critical alert of the system under test. The outage
    makes the real rule fire in the real Prometheus; the guard sees it and stops the run."""
    guard = {"name": "nats-down", "alert": "RouterNatsConnectionDown"}
    run_id = served.start_run("OUTAGE-001", guards=[guard])
    wait_until(
        lambda: not toxiproxy_state(clean.toxiproxy_url)["router_nats"]["enabled"],
        "the outage",
        40,
    )
    run = served.finished(run_id, timeout=90)
    assert run["status"] == "aborted", run
    aborted = run["aborted_by"]
    assert aborted["guard"] == "nats-down" and not aborted["unevaluable"], aborted
    firing = aborted["value"]["prometheus"] + aborted["value"]["alertmanager"]
    assert {labels["alertname"] for labels in firing} == {"RouterNatsConnectionDown"}, aborted
    fault = served.get(f"/api/runs/{run_id}/evidence.json").json()["scenarios"][0]["faults"][0]
    assert fault["applied_at"] < aborted["at"] and fault["heal"]["healed"] is True
    assert_target_clean(clean)


def test_emergency_stop_mid_fault_heals_within_two_seconds(
    served: ServedHarness, clean: Target
) -> None:
    run_id = served.start_run("LONG-001")
    toxic = wait_for_toxic(clean)
    active = 'harness_faults_active{target="local"} 1.0'
    assert active in served.get("/metrics").text  # read from the journal, while in effect
    started = time.monotonic()
    answer = served.post("/api/stop-all")
    elapsed = time.monotonic() - started
    assert_target_clean(clean)  # read back right after the answer, before the run winds down
    assert answer.status_code == 200, answer.text
    assert elapsed < 2.0, f"stop-all took {elapsed:.2f}s"
    result = answer.json()
    assert result["cancelled"] == [run_id] and result["clean"] is True
    (slot,) = [t for t in result["targets"] if t["target"] == clean.name]
    assert slot["read_back"]["router_nats"] == {"enabled": True, "toxics": []}
    assert toxic.removeprefix("harness_") in [h["key"] for h in slot["healed"]] + [
        s.split("/", 1)[1].removeprefix("harness_") for s in slot["swept"]
    ]
    run = served.finished(run_id, timeout=60)
    assert run["status"] == "cancelled" and "stop-all" in run["reason"]
    assert 'harness_faults_active{target="local"} 0.0' in served.get("/metrics").text


def test_sigkill_mid_run_then_restart_marks_it_interrupted_and_heals(
    served: ServedHarness, clean: Target
) -> None:
    run_id = served.start_run("LONG-001")
    wait_for_toxic(clean)
    served.kill()
    assert harness_toxics(clean), "premise: the killed service left its toxic behind"
    served.start()
    run = served.run(run_id)
    assert run["status"] == "interrupted", run
    assert "recovered at restart" in run["reason"]
    assert_target_clean(clean)
    evidence = served.get(f"/api/runs/{run_id}/evidence.json").json()
    assert [o["healed"] for o in evidence["leftovers_healed"]] == [True]


def test_requests_without_a_mutating_token_change_nothing(
    served: ServedHarness, clean: Target
) -> None:
    before = served.get("/api/runs").json()["total"]
    schedule = {"name": "nightly", "cron": "0 3 * * *", "scenarios": ["PASS-001"]}
    for token, status in ((None, 401), ("not-a-token-at-all", 401), (READER, 403)):
        assert served.post("/api/runs", {"scenarios": ["LONG-001"]}, token).status_code == status
        assert served.post("/api/schedules", schedule, token).status_code == status
        assert served.post("/api/stop-all", None, token).status_code == status
    assert served.get("/api/runs").json()["total"] == before
    assert served.get("/api/schedules").json() == []
    assert harness_toxics(clean) == []


def test_a_schedule_fires_a_run_that_passes_and_lands_in_history(
    served: ServedHarness, clean: Target
) -> None:
    schedule = {"name": "every-minute", "cron": "* * * * *", "scenarios": ["PASS-001"]}
    created = served.post("/api/schedules", schedule)
    assert created.status_code == 201, created.text
    try:
        runs = wait_until(
            lambda: served.get("/api/runs", schedule="every-minute").json()["runs"],
            "the schedule to fire",
            75,
            interval=0.5,
        )
        run = served.finished(runs[-1]["id"])
        assert run["status"] == "passed" and run["schedule"] == "every-minute", run
        events = served.get("/api/schedules/every-minute").json()["events"]
        assert any(e["outcome"] == "fired" and e["run_id"] == run["id"] for e in events)
        metrics = served.get("/metrics").text
        assert 'harness_schedule_runs_total{outcome="fired",schedule="every-minute"}' in metrics
        assert 'harness_schedule_last_success_timestamp_seconds{schedule="every-minute"}' in metrics
    finally:
        assert served.client_delete("/api/schedules/every-minute").status_code == 204
    assert_target_clean(clean)


def test_harness_stop_all_asks_the_service(served: ServedHarness, clean: Target) -> None:
    run_id = served.start_run("LONG-001")
    wait_for_toxic(clean)
    result = harness("stop-all", "--url", served.url, env={"HARNESS_TOKEN": OPERATOR})
    out = squash(result.stdout + result.stderr)
    assert result.returncode == 0, out
    assert f"service cancelled: {run_id}" in out and "local: clean" in out
    assert_target_clean(clean)
    assert served.finished(run_id, timeout=60)["status"] == "cancelled"


def test_harness_stop_all_heals_directly_when_no_service_answers(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    directory = scenarios(tmp_path / "scenarios", LONG=long_toxic("LONG-002", delivery=True))
    run = HarnessRun(clean_stack.target_path, directory, tmp_path / "cli-run", "LONG-002")
    try:
        wait_for_toxic(target)
        result = harness(
            "stop-all", "--url", "http://127.0.0.1:9", "--target", str(clean_stack.target_path)
        )
        out = squash(result.stdout + result.stderr)
        assert result.returncode == 0, out
        assert "service not reachable" in out and "SIGTERM to run" in out and "local: clean" in out
        assert_target_clean(target)
        assert run.wait(30) == 130  # the run was told to stop, and it stopped
    finally:
        run.stop()
