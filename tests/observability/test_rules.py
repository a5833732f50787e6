"""Alert rules: they load, their promtool tests pass, and they honour the observability contract."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from harness.durations import parse_duration_ms
from harness.timecompress import compress_rule_file

from ._support import (
    RULE_TESTS_DIR,
    RULES_DIR,
    SCENARIO_IDS,
    alert_rules,
    binary,
    contract_family,
    contract_metrics,
    markdown_anchors,
    metric_names,
    parse_scenarios,
    rule_files,
    rule_test_cases,
    run,
)

# The 18 alerts of the router's canonical rule file (scenario-catalogue.md §4.1), by group.
CANONICAL = {
    "router-jetstream.rules": [
        "RouterJetStreamHighRedeliveryRate",
        "RouterJetStreamHighRedeliveryFromSource",
        "RouterJetStreamMaxDeliverExhausted",
        "RouterJetStreamGrowingRedeliveryQueue",
        "RouterJetStreamHighRedeliveryQueueSize",
        "RouterDLQHighRate",
        "RouterDLQHighRateCritical",
    ],
    "router-nats-connection.rules": [
        "RouterNatsFrequentReconnects",
        "RouterNatsConnectionDown",
        "RouterNatsConnectionFailures",
        "RouterNatsReconnectionExhausted",
        "RouterNatsHighReconnectFailureRate",
    ],
    "router-nats-operations.rules": [
        "RouterNatsHighPublishFailureRate",
        "RouterNatsHighPublishWithAckFailureRate",
        "RouterNatsHighAckFailureRate",
        "RouterNatsHighNakFailureRate",
        "RouterNatsHighSubscribeFailureRate",
        "RouterNatsPendingOperationsQueueFull",
    ],
}
REQUIRED_LABELS = ("severity", "service", "component")
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url", "scenarios")
# The local profile divides windows by 30 and scrapes every second; rate() wants >= 4 samples.
COMPRESSION = 30
MIN_COMPRESSED_WINDOW_MS = 4000
_WINDOW = re.compile(r"\[(\d+[smhdwy][0-9smhdwy]*)(?::[^\]]*)?\]")


def rule_test_files() -> list[Path]:
    """The promtool test files (fixtures/ holds rule files used by them, not tests)."""
    return sorted(RULE_TESTS_DIR.glob("*.yml"))


ALERTS = alert_rules()
ALERT_IDS = [rule["alert"] for rule in ALERTS]


def test_rules_exist() -> None:
    assert rule_files(), f"no rule files in {RULES_DIR}"
    assert len(ALERTS) >= 18 + 4


def test_promtool_check_rules() -> None:
    promtool = binary("promtool")
    result = run([promtool, "check", "rules", *map(str, rule_files())])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_still_load_after_time_compression(tmp_path: Path) -> None:
    """The local stack renders the rules at factor 30; that rendering must load too."""
    promtool = binary("promtool")
    rendered = []
    for path in rule_files():
        out = tmp_path / path.name
        out.write_text(compress_rule_file(path.read_text(), COMPRESSION))
        rendered.append(str(out))
    result = run([promtool, "check", "rules", *rendered])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", rule_test_files(), ids=lambda p: p.name)
def test_promtool_rule_tests(test_file: Path) -> None:
    promtool = binary("promtool")
    # promtool resolves rule_files relative to the test file's directory.
    result = run([promtool, "test", "rules", str(test_file)], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_canonical_alerts_kept_with_their_groups() -> None:
    by_group = defaultdict(set)
    for rule in ALERTS:
        by_group[rule["_group"]].add(rule["alert"])
    for group, names in CANONICAL.items():
        missing = set(names) - by_group[group]
        assert not missing, f"{group} lacks canonical alerts {sorted(missing)}"
    assert len(ALERT_IDS) == len(set(ALERT_IDS)), "duplicate alert names"


def test_groups_keep_production_interval() -> None:
    groups = [(p, g) for p in rule_files() for g in yaml.safe_load(p.read_text())["groups"]]
    assert groups, "no rule group found"
    for path, group in groups:
        assert group.get("interval") == "30s", f"{path.name}: {group['name']}"


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_rule_labels_and_annotations(rule: dict) -> None:
    labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
    for key in REQUIRED_LABELS:
        assert labels.get(key), f"label {key} missing"
    assert labels["severity"] in ("critical", "warning")
    assert labels["service"] in ("router", "nats")  # nats: the cluster rules
    for key in REQUIRED_ANNOTATIONS:
        assert str(annotations.get(key, "")).strip(), f"annotation {key} missing"
    scenarios = parse_scenarios(annotations["scenarios"])
    unknown = set(scenarios) - set(SCENARIO_IDS)
    assert scenarios and not unknown, f"unknown scenario IDs {sorted(unknown)}"


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_runbook_anchor_exists(rule: dict) -> None:
    """runbook_url points at a heading of the rules README; a dangling link helps nobody at 3am."""
    url = rule["annotations"]["runbook_url"]
    path, _, anchor = url.partition("#")
    target = Path(__file__).resolve().parents[2] / path
    assert target.is_file(), f"{url}: no such file"
    assert anchor in markdown_anchors(target), f"{url}: no heading for #{anchor}"


def test_every_scenario_has_an_alert() -> None:
    covered = {sid for rule in ALERTS for sid in parse_scenarios(rule["annotations"]["scenarios"])}
    missing = [sid for sid in SCENARIO_IDS if sid not in covered]
    assert not missing, f"scenarios without an alert: {missing}"


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_windows_survive_time_compression(rule: dict) -> None:
    """Every range window still holds >= 4 one-second scrapes after dividing by 30."""
    for window in _WINDOW.findall(rule["expr"]):
        assert parse_duration_ms(window) / COMPRESSION >= MIN_COMPRESSED_WINDOW_MS, window


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_rule_metrics_are_in_contract(rule: dict) -> None:
    contract = contract_metrics()
    names = metric_names(rule["expr"])
    assert names, f"no metric found in {rule['expr']!r}"
    unknown = sorted(n for n in names if contract_family(n, contract) is None)
    assert not unknown, f"not in deploy/metrics-contract.yaml: {unknown}"


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    firing, silent = set(), set()
    assert ALERT_IDS, "no alert rule found"
    for _, case in rule_test_cases(rule_test_files()):
        (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    for name in ALERT_IDS:
        assert name in firing, f"{name}: no promtool case where it fires"
        assert name in silent, f"{name}: no promtool case where it stays silent"


def test_firing_cases_list_the_rule_labels() -> None:
    """exp_labels must carry the rule's own labels (promtool checks the rest)."""
    rules = {rule["alert"]: rule for rule in ALERTS}
    cases = list(rule_test_cases(rule_test_files()))
    assert any(c.get("exp_alerts") and c["alertname"] in rules for _, c in cases), "no case fires"
    for test_file, case in cases:
        rule = rules.get(case["alertname"])
        if rule is None:
            continue
        for alert in case.get("exp_alerts") or []:
            for key, value in rule["labels"].items():
                assert alert["exp_labels"].get(key) == value, (test_file.name, key)
