"""`harness validate`: what a scenario names must exist in the contract, the rules and the
target, and every expectation must be able to give an honest verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_target
from harness.contract import default_contract_path, load_contract
from harness.paths import deploy_dir, project_root
from harness.scenario import load_scenarios
from harness.validate import (
    alert_names,
    catalogue_problems,
    contract_metrics,
    contract_problems,
    cross_check,
)
from harness.yamlfile import FileProblems
from tests import inprocess

GOOD = """\
id: S1
title: Intermittent ACK failures
faults:
  - kind: toxic
    proxy: router_nats
    type: nats_drop
    stream: upstream
    toxicity: 0.1
    attributes: {frames: ack}
    duration: 15m
expect:
  metrics:
    - query: sum by (reason) (rate(router_nats_ack_failures_total[$window]))
      labels: {reason: timeout}
      moved: up
  alerts:
    fire: [RouterNatsHighAckFailureRate]
    forbid: [RouterNatsConnectionDown]
"""
COMPOSE = project_root() / "deploy" / "targets" / "compose.yaml"
CONTRACT = load_contract()


def check(tmp_path: Path, text: str, target: Path | None = COMPOSE) -> list[str]:
    (tmp_path / "s.yaml").write_text(text)
    spec = load_target(target) if target else None
    return [str(p) for p in cross_check(load_scenarios(tmp_path), deploy_dir(), CONTRACT, spec)]


def test_deploy_files_are_readable() -> None:
    assert "RouterNatsHighAckFailureRate" in alert_names(deploy_dir() / "prometheus" / "rules")
    names, _ = contract_metrics(deploy_dir() / "metrics-contract.yaml")
    assert "router_nats_ack_failures_total" in names


def test_good_scenario_has_no_problems(tmp_path: Path) -> None:
    assert check(tmp_path, GOOD) == []


def test_alert_the_contract_does_not_describe(tmp_path: Path) -> None:
    found = check(tmp_path, GOOD.replace("[RouterNatsConnectionDown]", "[RouterNatsConnDown]"))
    assert found == [
        f"{tmp_path}/s.yaml:18 expect.alerts.forbid[0]: the alerting contract does not "
        "describe 'RouterNatsConnDown'"
    ]


def test_renamed_metric(tmp_path: Path) -> None:
    found = check(
        tmp_path, GOOD.replace("router_nats_ack_failures_total", "router_nats_acks_total")
    )
    assert found == [
        f"{tmp_path}/s.yaml:13 expect.metrics[0].query: metric 'router_nats_acks_total' "
        "is not in the router's metric contract"
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("reason: timeout", "reason: unknown"),
            "expect.metrics[0].labels.reason: 'unknown' names nothing: expect the real value",
        ),
        (
            ("sum by (reason)", "sum"),
            "expect.metrics[0].labels.reason: the query aggregates label 'reason' away",
        ),
    ],
)
def test_label_expectations_that_cannot_be_honest(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    found = check(tmp_path, GOOD.replace(*edit))
    assert len(found) == 1 and found[0].startswith(f"{tmp_path}/s.yaml:14 {message}"), found


def test_label_the_harness_supplies_through_the_router_hook(tmp_path: Path) -> None:
    hook = (
        "  - kind: router_hook\n    operation: ack\n    mode: intermittent\n"
        "    probability: 0.5\n    fault: {mode: error, reason: timeout}\n"
        "    why: test\n    duration: 15m\n"
    )
    text = GOOD.replace("    duration: 15m\n", "    duration: 15m\n" + hook, 1)
    found = check(tmp_path, text)
    assert any(
        "reason='timeout' is supplied by this scenario's own router_hook fault" in f for f in found
    ), found


def test_fault_not_through_toxiproxy_must_say_why(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  - kind: toxic\n    proxy: router_nats\n    type: nats_drop\n    stream: upstream\n"
        "    toxicity: 0.1\n    attributes: {frames: ack}\n",
        "  - kind: poison\n    fraction: 0.2\n",
    )
    found = check(tmp_path, text)
    assert found == [
        f"{tmp_path}/s.yaml:4 faults[0].why: a poison fault is not driven through Toxiproxy: "
        "say why the wire cannot express it"
    ]


def test_absolute_bound_alone_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(GOOD.replace("      moved: up\n", "      above: 0\n"))
    with pytest.raises(FileProblems, match="needs a condition relative to the baseline"):
        load_scenarios(tmp_path)


def test_ratio_needs_an_absolute_floor(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(GOOD.replace("moved: up", "ratio_at_least: 3"))
    with pytest.raises(FileProblems, match="ratio_at_least needs an absolute floor"):
        load_scenarios(tmp_path)


def test_unknown_proxy(tmp_path: Path) -> None:
    found = check(tmp_path, GOOD.replace("proxy: router_nats", "proxy: nats_router"))
    assert found == [
        f"{tmp_path}/s.yaml:5 faults[0].proxy: proxy 'nats_router' is not in target 'compose' "
        "(it has: router_nats)"
    ]


def test_proxies_unchecked_without_target(tmp_path: Path) -> None:
    assert check(tmp_path, GOOD.replace("proxy: router_nats", "proxy: x"), target=None) == []


def test_variant_problems_point_at_the_variant(tmp_path: Path) -> None:
    text = GOOD + (
        "variants:\n  - name: below\n"
        "    boundary: {alert: RouterNatsHighAckFailureRate, side: below}\n"
        "    faults: {0: {toxicity: 0.004}}\n"
        "    expect: {alerts: {forbid: [RouterNatsConnDown]}}\n"
    )
    found = check(tmp_path, text)
    assert found == [
        f"{tmp_path}/s.yaml:20 expect.alerts.forbid[0] (S1@below): the alerting contract does "
        "not describe 'RouterNatsConnDown'"
    ]


def test_the_shipped_contract_matches_the_rules() -> None:
    assert contract_problems(CONTRACT, default_contract_path(), deploy_dir()) == []


def test_contract_objective_a_rule_cannot_meet(tmp_path: Path) -> None:
    text = (
        default_contract_path().read_text().replace("detect_within: 10m30s", "detect_within: 2m", 1)
    )
    path = tmp_path / "alerting-contract.yaml"
    path.write_text(text)
    problems = [str(p) for p in contract_problems(load_contract(path), path, deploy_dir())]
    assert len(problems) == 1, problems
    assert (
        "alerts.RouterJetStreamHighRedeliveryRate.detect_within: the rule cannot fire within 2m"
        in problems[0]
    )
    assert "its floor is 5m35s" in problems[0]


def test_contract_entry_without_rule_and_rule_without_entry(tmp_path: Path) -> None:
    text = (
        default_contract_path()
        .read_text()
        .replace("  RouterDLQHighRateCritical:", "  RouterDLQHighRateCrit:", 1)
    )
    path = tmp_path / "alerting-contract.yaml"
    path.write_text(text)
    problems = [str(p) for p in contract_problems(load_contract(path), path, deploy_dir())]
    assert any("alerts.RouterDLQHighRateCrit: no alert rule" in p for p in problems), problems
    assert any(
        "RouterDLQHighRateCritical: this alert rule has no entry in the alerting contract" in p
        for p in problems
    ), problems


def test_catalogue_must_fire_every_rule_and_every_forbidden_alert(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(GOOD)
    problems = [str(p) for p in catalogue_problems(load_scenarios(tmp_path), deploy_dir())]
    assert any(
        "s.yaml:18 expect.alerts.forbid[0]: RouterNatsConnectionDown is forbidden here but no "
        "scenario fires it" in p
        for p in problems
    ), problems
    assert any(".alert: RouterDLQHighRate: no scenario fires this rule" in p for p in problems), (
        problems
    )
    assert not any("RouterNatsHighAckFailureRate" in p for p in problems)


def test_the_shipped_catalogue_fires_every_rule_and_forbidden_alert() -> None:
    root = project_root() / "scenarios"
    catalogue = load_scenarios(root) | load_scenarios(root / "cluster")  # cluster: CL-…
    assert catalogue_problems(catalogue, deploy_dir()) == []


def test_cli_fails_on_an_unexercised_rule_but_not_for_named_files(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(GOOD)
    whole = inprocess.harness("validate", "--scenarios", str(tmp_path))
    assert whole.returncode == 1 and "no scenario fires this rule" in whole.stderr, whole.stderr
    named = inprocess.harness("validate", str(tmp_path / "s.yaml"), "--scenarios", str(tmp_path))
    assert named.returncode == 0, named.stderr


def test_cli_takes_files_and_reports_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(GOOD.replace("RouterNatsConnectionDown", "Nope"))
    bad = inprocess.harness("validate", str(tmp_path / "s.yaml"))
    assert bad.returncode == 1 and "does not describe 'Nope'" in bad.stderr, bad.stderr
    (tmp_path / "s.yaml").write_text(GOOD.replace("id: S1", "id: S99"))
    good = inprocess.harness("validate", str(tmp_path / "s.yaml"))
    assert good.returncode == 0, good.stderr
    (tmp_path / "s.yaml").write_text("id: [\n")
    broken = inprocess.harness("validate", "--scenarios", str(tmp_path))
    assert broken.returncode == 2 and "s.yaml:2: YAML syntax error" in broken.stderr
