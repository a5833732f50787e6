"""The harness's own alert rules: they load, their promtool tests pass, they watch what the
service exports and nothing else, and each alert is shown firing and staying silent."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.paths import project_root
from harness.promql import metric_names
from tests.observability._support import (
    RULES_DIR,
    alert_rules,
    markdown_anchors,
    rule_test_cases,
    run,
)

ROOT = project_root()
HARNESS_DIR = ROOT / "deploy" / "harness"
RULE_FILE = HARNESS_DIR / "alerts.yml"
TEST_FILES = sorted(HARNESS_DIR.glob("*.test.yml"))

# What `harness serve` exports (issue 12 §6); a rule on any other name can never fire.
SERVICE_METRICS = {
    "harness_runs_total",
    "harness_run_duration_seconds",
    "harness_scenario_duration_seconds",
    "harness_faults_active",
    "harness_runs_active",
    "harness_guard_aborts_total",
    "harness_schedule_last_success_timestamp_seconds",
    "harness_schedule_runs_total",
}
EXPECTED_ALERTS = {
    "HarnessFaultOutlivedRun",
    "HarnessGameDayNotRun",
    "HarnessGuardAborted",
    "HarnessRunsFailing",
    "HarnessScheduleMissed",
    "HarnessMetricsAbsent",
}


def promtool() -> str:
    """promtool is a test dependency (scripts/setup.sh installs it): missing it is a failure."""
    found = shutil.which("promtool")
    assert found, "promtool not found: scripts/setup.sh installs the Debian package prometheus"
    return found


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULE_FILE.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


ALERTS = {rule["alert"]: rule for rule in rules() if "alert" in rule}
RECORDS = {rule["record"] for rule in rules() if "record" in rule}


def test_promtool_check_rules() -> None:
    result = run([promtool(), "check", "rules", str(RULE_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_rule_tests(test_file: Path) -> None:
    # promtool resolves rule_files relative to the test file's directory.
    result = run([promtool(), "test", "rules", str(test_file)], timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_the_issue_asks_for() -> None:
    assert set(ALERTS) == EXPECTED_ALERTS
    assert len(TEST_FILES) >= 1


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_rules_use_only_what_the_service_exports(name: str) -> None:
    used = metric_names(ALERTS[name]["expr"])
    assert used, "no metric in the expression"
    unknown = used - SERVICE_METRICS - RECORDS
    assert not unknown, f"not exported by harness serve: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_labels_annotations_and_runbook(name: str) -> None:
    rule = ALERTS[name]
    labels, annotations = rule["labels"], rule["annotations"]
    assert labels["severity"] in ("critical", "warning", "info")
    assert labels["service"] == "harness" and labels["component"] and labels["team"]
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"annotation {key} missing"
    path, _, anchor = annotations["runbook_url"].partition("#")
    assert anchor in markdown_anchors(ROOT / path), f"{path} has no heading for #{anchor}"


def test_fault_outliving_its_run_pages() -> None:
    rule = ALERTS["HarnessFaultOutlivedRun"]
    assert (rule["labels"]["severity"], rule["for"]) == ("critical", "2m")


def test_every_alert_fires_and_stays_silent_in_a_test() -> None:
    firing, silent = set(), set()
    for test_file, case in rule_test_cases(TEST_FILES):
        assert case["alertname"] in ALERTS, f"{test_file.name} tests unknown {case['alertname']}"
        (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    assert firing == set(ALERTS), f"never shown firing: {sorted(set(ALERTS) - firing)}"
    assert silent == set(ALERTS), f"never shown silent: {sorted(set(ALERTS) - silent)}"


def test_firing_cases_carry_the_rule_labels() -> None:
    cases = list(rule_test_cases(TEST_FILES))
    assert any(case.get("exp_alerts") for _, case in cases), "no firing case to check"
    for test_file, case in cases:
        for alert in case.get("exp_alerts") or []:
            for key, value in ALERTS[case["alertname"]]["labels"].items():
                assert alert["exp_labels"].get(key) == value, (test_file.name, key)


def test_kept_apart_from_the_router_rules() -> None:
    """deploy/prometheus/rules is the implementation under test; validate wants a scenario
    firing each rule there, and no scenario fires the harness's own alerts."""
    assert not set(ALERTS) & {rule["alert"] for rule in alert_rules()}
    assert RULE_FILE.parent != RULES_DIR
