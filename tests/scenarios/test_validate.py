"""`harness validate`: what a scenario names must exist in rules, contract and target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.config import load_target
from harness.paths import deploy_dir, project_root
from harness.scenario import load_scenarios
from harness.validate import alert_names, contract_metrics, cross_check

GOOD = """\
id: S1
title: Intermittent ACK failures
faults:
  - kind: toxic
    proxy: router_nats
    type: latency
    attributes: {latency: 1500}
    duration: 30s
expect:
  metrics:
    - query: sum(rate(router_nats_ack_failures_total[1m])) / sum(rate(router_nats_ack_total[1m]))
      moved: up
  alerts:
    fire: [RouterNatsHighAckFailureRate]
    forbid: [RouterNatsConnectionDown]
"""
COMPOSE = project_root() / "deploy" / "targets" / "compose.yaml"


def check(tmp_path: Path, text: str, target: Path | None = COMPOSE) -> list[str]:
    (tmp_path / "s.yaml").write_text(text)
    spec = load_target(target) if target else None
    return [str(p) for p in cross_check(load_scenarios(tmp_path), deploy_dir(), spec)]


def test_deploy_files_are_readable() -> None:
    assert "RouterNatsHighAckFailureRate" in alert_names(deploy_dir() / "prometheus" / "rules")
    names, _ = contract_metrics(deploy_dir() / "metrics-contract.yaml")
    assert "router_nats_ack_failures_total" in names


def test_good_scenario_has_no_problems(tmp_path: Path) -> None:
    assert check(tmp_path, GOOD) == []


def test_unknown_alert(tmp_path: Path) -> None:
    found = check(tmp_path, GOOD.replace("[RouterNatsConnectionDown]", "[RouterNatsConnDown]"))
    assert found == [
        f"{tmp_path}/s.yaml:15 expect.alerts.forbid[0]: no alert rule named 'RouterNatsConnDown' "
        f"in {deploy_dir() / 'prometheus' / 'rules'}"
    ]


def test_renamed_metric(tmp_path: Path) -> None:
    found = check(tmp_path, GOOD.replace("router_nats_ack_total", "router_nats_acks_total"))
    assert found == [
        f"{tmp_path}/s.yaml:11 expect.metrics[0].query: metric 'router_nats_acks_total' "
        "is not in the router's metric contract"
    ]


def test_unknown_proxy(tmp_path: Path) -> None:
    found = check(tmp_path, GOOD.replace("proxy: router_nats", "proxy: nats_router"))
    assert found == [
        f"{tmp_path}/s.yaml:5 faults[0].proxy: proxy 'nats_router' is not in target 'compose' "
        "(it has: router_nats)"
    ]


def test_proxies_unchecked_without_target(tmp_path: Path) -> None:
    assert check(tmp_path, GOOD.replace("proxy: router_nats", "proxy: x"), target=None) == []


def test_process_fault_refused_for_external_target(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  - kind: toxic\n    proxy: router_nats\n    type: latency\n"
        "    attributes: {latency: 1500}\n",
        "  - kind: process\n    component: nats\n    action: kill\n",
    )
    found = check(tmp_path, text)
    assert found == [
        f"{tmp_path}/s.yaml:4 faults[0].kind: process faults need a local stack; "
        "target 'compose' is external"
    ]


def test_cli_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(GOOD.replace("RouterNatsConnectionDown", "Nope"))
    cmd = [sys.executable, "-m", "harness", "validate", "--scenarios", str(tmp_path)]
    bad = subprocess.run([*cmd, "--target", str(COMPOSE)], capture_output=True, text=True)
    assert bad.returncode == 1 and "no alert rule named 'Nope'" in bad.stderr
    (tmp_path / "s.yaml").write_text("id: [\n")
    broken = subprocess.run(cmd, capture_output=True, text=True)
    assert broken.returncode == 2 and "s.yaml:2: YAML syntax error" in broken.stderr
