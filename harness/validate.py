"""Cross-check scenarios against what they name: alert rules, the metric contract, the target.

A scenario that expects an alert no rule defines, or a metric the router does not export, can
never pass; `harness validate` says so before anything runs.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.config import Target
from harness.promql import base_metric, metric_names
from harness.rulefiles import alert_rules, rule_files
from harness.scenario import Scenario
from harness.yamlfile import Problem, locate, parse_yaml

# Series Prometheus itself, or components other than the router, provide.
NON_ROUTER_METRICS = {"ALERTS", "ALERTS_FOR_STATE", "up", "scrape_duration_seconds"}
NON_ROUTER_PREFIXES = ("toxiproxy_", "harness_", "prometheus_", "alertmanager_")


def alert_names(rules_dir: Path) -> set[str]:
    """Every alert defined in the rule files of `rules_dir`."""
    return set(alert_rules(rules_dir))


def contract_metrics(contract: Path) -> tuple[set[str], set[str]]:
    """(every metric name, the histogram names) of the router's metric contract."""
    doc = yaml.safe_load(contract.read_text()) or {}
    metrics = doc.get("metrics") or []
    return (
        {m["name"] for m in metrics},
        {m["name"] for m in metrics if m.get("type") == "histogram"},
    )


def unknown_metrics(query: str, known: set[str], histograms: set[str]) -> list[str]:
    """Metric names in `query` that neither the contract nor Prometheus itself provides."""
    return sorted(
        name
        for name in metric_names(query)
        if base_metric(name, histograms) not in known
        and name not in NON_ROUTER_METRICS
        and not name.startswith(NON_ROUTER_PREFIXES)
    )


def cross_check(
    scenarios: dict[str, tuple[Scenario, Path]],
    deploy_dir: Path,
    target: Target | None = None,
) -> list[Problem]:
    """Problems of every scenario against the rules, the contract and (if given) the target."""
    alerts = alert_names(deploy_dir / "prometheus" / "rules")
    known, histograms = contract_metrics(deploy_dir / "metrics-contract.yaml")
    problems: list[Problem] = []
    for scenario, path in scenarios.values():
        _, root = parse_yaml(path.read_text(), str(path))

        def problem(loc: list[str | int], field: str, message: str) -> None:
            problems.append(Problem(str(path), locate(root, loc), field, message))  # noqa: B023

        for key in ("fire", "forbid"):
            for i, name in enumerate(getattr(scenario.expect.alerts, key)):
                if name not in alerts:
                    loc = ["expect", "alerts", key, i]
                    problem(
                        loc,
                        f"expect.alerts.{key}[{i}]",
                        f"no alert rule named {name!r} in {deploy_dir / 'prometheus' / 'rules'}",
                    )
        for i, metric in enumerate(scenario.expect.metrics):
            for name in unknown_metrics(metric.query, known, histograms):
                loc = ["expect", "metrics", i, "query"]
                problem(
                    loc,
                    f"expect.metrics[{i}].query",
                    f"metric {name!r} is not in the router's metric contract",
                )
        if target is not None:
            for i, fault in enumerate(scenario.faults):
                proxy = getattr(fault, "proxy", None)
                if proxy is not None and proxy not in target.proxies:
                    problem(
                        ["faults", i, "proxy"],
                        f"faults[{i}].proxy",
                        f"proxy {proxy!r} is not in target {target.name!r} "
                        f"(it has: {', '.join(sorted(target.proxies)) or 'none'})",
                    )
                if fault.kind == "process" and target.kind != "local":
                    problem(
                        ["faults", i, "kind"],
                        f"faults[{i}].kind",
                        f"process faults need a local stack; target {target.name!r} is external",
                    )
    return sorted(problems, key=lambda p: (p.file, p.line or 0))


def rule_problems(deploy_dir: Path) -> list[Problem]:
    """Rules that read metrics the router's contract does not have (a renamed metric, a typo):
    such a rule can never fire, whatever happens to the router."""
    known, histograms = contract_metrics(deploy_dir / "metrics-contract.yaml")
    problems: list[Problem] = []
    for path in rule_files(deploy_dir / "prometheus" / "rules"):
        data, root = parse_yaml(path.read_text(), str(path))
        for g, group in enumerate((data or {}).get("groups") or []):
            for r, rule in enumerate(group.get("rules") or []):
                for name in unknown_metrics(str(rule.get("expr", "")), known, histograms):
                    loc: list[str | int] = ["groups", g, "rules", r, "expr"]
                    label = rule.get("alert") or rule.get("record")
                    problems.append(
                        Problem(
                            str(path),
                            locate(root, loc),
                            f"groups[{g}].rules[{r}].expr",
                            f"{label}: metric {name!r} is not in the router's metric contract",
                        )
                    )
    return problems
