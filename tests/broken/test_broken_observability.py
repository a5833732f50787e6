"""The checks fail on broken observability (issue 6, "Proving the checks can fail").

One local stack is started from a deliberately broken copy of deploy/ (breakages.py: one
breakage per alert) and BROKEN-001 (ACK errors plus poison) runs against it once through the
real CLI, judged against the repo's own deploy/. Each test asserts the specific failing check
of one breakage; the control test asserts that everything not broken still passed in the same
run, so each failure is attributable to its breakage. Against the unbroken deploy/ the same
scenario passes every check.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from harness.config import load_target
from harness.stack.stack import LocalStack
from tests.broken.breakages import (
    BROKEN,
    CANONICAL_ACK,
    CONTROL,
    DROPPED,
    DROPPED_RECEIVER,
    FAULT_S,
    LONG_FOR,
    RENAMED,
    RENAMED_FROM,
    RENAMED_TO,
    RULES,
    THRESHOLD,
    expr_line,
)
from tests.broken.conftest import REPO_DEPLOY, BrokenRun, harness_env

SCENARIOS = REPO_DEPLOY.parent / "scenarios"


def alert_check(run: BrokenRun, alert: str) -> dict:
    check = run.check(f"alert {alert} fires")
    assert check["kind"] == "alert"
    return check


def never_fired(check: dict) -> None:
    """Failed because the alert never fired, with the rule loaded and judged (not an error)."""
    e = check["evidence"]
    assert check["status"] == "fail", check
    assert check["summary"].startswith("never fired"), check["summary"]
    assert e["first_firing"] is None and e["alerts_series"]["firing"] == []
    assert not [p for p in e["polled"] if p["state"] == "firing"]


# --- validate (no stack) --------------------------------------------------------------------


def _validate(project: Path, deploy: Path) -> subprocess.CompletedProcess[str]:
    project.mkdir()
    (project / "deploy").symlink_to(deploy, target_is_directory=True)
    (project / "scenarios").symlink_to(SCENARIOS, target_is_directory=True)
    return subprocess.run(
        [sys.executable, "-m", "harness", "validate"],
        capture_output=True, text=True, timeout=60, cwd=project,
        env=harness_env(HARNESS_PROJECT_DIR=str(project)),
    )  # fmt: skip


def test_validate_reports_the_renamed_metric_with_file_and_line(
    broken_deploy: Path, tmp_path: Path
) -> None:
    clean = _validate(tmp_path / "clean", REPO_DEPLOY)
    assert clean.returncode == 0, clean.stderr

    broken = _validate(tmp_path / "broken", broken_deploy)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    rules = tmp_path / "broken" / "deploy" / RULES
    line = expr_line(rules, RENAMED)
    problems = [ln for ln in broken.stderr.splitlines() if ln.startswith(str(rules))]
    # only the rename: a canonical ratio, a threshold, a `for:` or a route use known metrics
    assert problems == [
        f"{rules}:{line} groups[0].rules[0].expr: {RENAMED}: metric {RENAMED_TO!r} "
        "is not in the router's metric contract"
    ], broken.stderr
    assert "1 problem(s)" in broken.stderr


# --- live: one run against the broken stack -------------------------------------------------


@pytest.mark.live
def test_broken_run_fails_exactly_the_broken_alert_checks(broken_run: BrokenRun) -> None:
    scenario = broken_run.scenario
    assert broken_run.returncode == 1, broken_run.stderr[-3000:]
    assert scenario["verdict"] == "failed", scenario["reason"]
    failed = {c["name"] for c in scenario["checks"] if c["status"] != "pass"}
    assert failed == {f"alert {a} fires" for a in BROKEN}
    for alert in BROKEN:
        assert f"alert {alert} fires:" in scenario["reason"]
    assert CONTROL not in scenario["reason"]
    suites = ET.parse(broken_run.out / "junit.xml").getroot()
    assert (suites.get("failures"), suites.get("errors")) == (str(len(BROKEN)), "0")
    assert broken_run.seconds < 150


@pytest.mark.live
def test_control_unbroken_checks_pass_in_the_same_run(broken_run: BrokenRun) -> None:
    """Without this the failures could be a broken run, not the breakages."""
    checks = broken_run.scenario["checks"]
    kinds = {c["kind"] for c in checks}
    assert {"metric", "alert", "alert_forbidden", "dashboard", "delivery"} <= kinds
    unbroken = [c for c in checks if c["name"] not in {f"alert {a} fires" for a in BROKEN}]
    assert len(unbroken) == len(checks) - len(BROKEN)
    for check in unbroken:
        assert check["status"] == "pass", check
    control = alert_check(broken_run, CONTROL)["evidence"]
    assert control["time_to_fire_s"] <= control["budget"]["fire_s"]
    assert any(n["status"] == "firing" for n in control["notifications"])
    assert all(f["heal"]["healed"] for f in broken_run.scenario["faults"])


@pytest.mark.live
def test_canonical_ratio_as_written_never_fires(broken_run: BrokenRun) -> None:
    check = alert_check(broken_run, CANONICAL_ACK)
    never_fired(check)
    loaded = check["evidence"]["budget"]["loaded_query"]
    assert "+ 1" in loaded and "sum(" not in loaded, loaded  # Prometheus ran the canonical expr
    # the ACK failures it should have seen were there
    ack = broken_run.check("metric sum by (reason) (rate(router_nats_ack_failures_total[$window]))")
    assert ack["status"] == "pass", ack


@pytest.mark.live
def test_threshold_out_of_reach_never_fires(broken_run: BrokenRun) -> None:
    check = alert_check(broken_run, THRESHOLD)
    never_fired(check)
    assert "> 1000" in check["evidence"]["budget"]["loaded_query"]
    dlq = broken_run.check("metric sum(rate(router_dlq_total[$window]))")
    assert dlq["status"] == "pass", dlq


@pytest.mark.live
def test_longer_for_fails_on_time_to_fire(broken_run: BrokenRun) -> None:
    check = alert_check(broken_run, LONG_FOR)
    e = check["evidence"]
    assert check["status"] == "fail", check
    assert "exceeds its budget" in check["summary"], check["summary"]
    # judged against the reference rule (2m → 4 s), not the loaded one (10m → 20 s)
    assert e["budget"]["for_s"] == 4 and e["budget"]["loaded_for_s"] == 20
    # it did fire, late, inside the fault, and was notified
    assert e["budget"]["fire_s"] < e["time_to_fire_s"] < FAULT_S
    assert any(n["status"] == "firing" for n in e["notifications"])


@pytest.mark.live
def test_route_to_a_receiver_without_webhook_fails_on_notification(
    broken_run: BrokenRun,
) -> None:
    check = alert_check(broken_run, DROPPED)
    e = check["evidence"]
    assert check["status"] == "fail", check
    assert "notification not delivered" in check["summary"], check["summary"]
    assert "never fired" not in check["summary"]
    # Prometheus fired it and Alertmanager received it on the broken route
    assert e["first_firing"] is not None and e["alerts_series"]["firing"]
    assert e["alertmanager"]["receivers"] == [DROPPED_RECEIVER]
    assert e["notifications"] == []


@pytest.mark.live
def test_renamed_metric_alert_is_never_pass(
    broken_run: BrokenRun, broken_stack: LocalStack
) -> None:
    check = alert_check(broken_run, RENAMED)
    assert check["status"] in ("fail", "error"), check
    never_fired(check)
    assert RENAMED_TO in check["evidence"]["budget"]["loaded_query"]
    # the rule reads a series that does not exist; the router's real one had data
    prometheus = load_target(broken_stack.target_path).prometheus_url
    for metric, present in ((RENAMED_TO, False), (RENAMED_FROM, True)):
        body = httpx.get(
            f"{prometheus}/api/v1/query", params={"query": f"count({metric})"}, timeout=5
        ).json()
        assert bool(body["data"]["result"]) is present, (metric, body)
