"""What the project says can be covered: scenarios, alert rules, contract metrics, panels.

The coverage matrix needs it for its inverse lists (what no run exercised) and the claimed-vs-
observed comparison needs it to tell a scenario ID it knows from a typo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.checks.dashboards import load_dashboards, panels
from harness.coverage_rules import out_of_scope, panel_scenarios, scenario_ids, unique_dashboards
from harness.paths import deploy_dir, project_root
from harness.rulefiles import alert_rules
from harness.scenario import load_scenarios
from harness.validate import contract_metrics
from harness.yamlfile import load_yaml


@dataclass(frozen=True)
class ScenarioEntry:
    """A scenario of the inventory, as the matrix lists it."""

    id: str
    base_id: str
    title: str
    aliases: tuple[str, ...] = ()
    related: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleEntry:
    """An alerting rule of `deploy/prometheus/rules`, with the scenarios it says it covers."""

    alert: str
    file: str
    scenarios: tuple[str, ...] = ()


@dataclass(frozen=True)
class PanelEntry:
    """A dashboard panel, with the scenarios its description names."""

    dashboard: str
    title: str
    scenarios: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.dashboard} / {self.title}"


@dataclass
class Inventory:
    """The project's scenarios, rules, contract metrics and panels."""

    scenarios: dict[str, ScenarioEntry] = field(default_factory=dict)
    rules: dict[str, RuleEntry] = field(default_factory=dict)
    metrics: set[str] = field(default_factory=set)
    histograms: set[str] = field(default_factory=set)
    out_of_scope: dict[str, str] = field(default_factory=dict)  # family -> the contract's reason
    panels: list[PanelEntry] = field(default_factory=list)

    def known_ids(self) -> set[str]:
        """Every scenario ID the project names anywhere: catalogue IDs, base IDs, aliases,
        related IDs, and the IDs rules and panels say they cover."""
        ids: set[str] = set()
        for s in self.scenarios.values():
            ids |= {s.id, s.base_id, *s.aliases, *s.related}
        for r in self.rules.values():
            ids |= set(r.scenarios)
        for p in self.panels:
            ids |= set(p.scenarios)
        return ids


def load_inventory(scenarios_dir: Path | None = None, deploy: Path | None = None) -> Inventory:
    """The inventory from the project's files (`scenarios/`, `deploy/`); a part whose files are
    missing stays empty (a report of old evidence still renders)."""
    scenarios_dir = scenarios_dir or project_root() / "scenarios"
    deploy = deploy or deploy_dir()
    inventory = Inventory()
    if scenarios_dir.is_dir():
        for scenario, _ in load_scenarios(scenarios_dir).values():
            inventory.scenarios[scenario.id] = ScenarioEntry(
                scenario.id,
                scenario.base_id,
                scenario.title,
                tuple(scenario.aliases),
                tuple(scenario.related),
            )
    rules_dir = deploy / "prometheus" / "rules"
    if rules_dir.is_dir():
        for alert, (rule, _, path) in alert_rules(rules_dir).items():
            annotations = rule.get("annotations") or {}
            inventory.rules[alert] = RuleEntry(
                alert, path.name, tuple(scenario_ids(str(annotations.get("scenarios", ""))))
            )
    contract = deploy / "metrics-contract.yaml"
    if contract.is_file():
        inventory.metrics, inventory.histograms = contract_metrics(contract)
        inventory.out_of_scope = out_of_scope(load_yaml(contract)[0] or {})
    dashboards_dir = deploy / "grafana" / "dashboards"
    if dashboards_dir.is_dir():
        for name, dashboard in unique_dashboards(load_dashboards(dashboards_dir)):
            for panel in panels(dashboard):
                entry = PanelEntry(name, panel.get("title", ""), tuple(panel_scenarios(panel)))
                inventory.panels.append(entry)
    return inventory


_ORDER = re.compile(r"^([A-Z]+)-?(\d+)(?:@(.*))?$")
_GROUPS = {"S": 0, "JS": 1, "NATS": 2, "PERF": 3}


def id_order(scenario_id: str) -> tuple[int, str, int, str]:
    """The coverage matrix's order: S1–S3, JS-, NATS-, PERF-, numerically, variants after
    their scenario."""
    match = _ORDER.match(scenario_id)
    if not match:
        return 9, scenario_id, 0, ""
    prefix, number, variant = match.groups()
    return _GROUPS.get(prefix, 8), prefix, int(number), variant or ""
