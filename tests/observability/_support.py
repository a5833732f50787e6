"""Shared helpers for the observability-contract tests: paths, binaries, contract, PromQL names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"
RULE_TESTS_DIR = DEPLOY / "prometheus" / "tests"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "router-jetstream.json"
CONTRACT = DEPLOY / "metrics-contract.yaml"

# The coverage-matrix numbering (scenario-catalogue.md §2, scheme B): the 20 scenarios.
SCENARIO_IDS: tuple[str, ...] = (
    *(f"S{i}" for i in range(1, 4)),
    *(f"JS-{i:03d}" for i in range(1, 6)),
    *(f"NATS-{i:03d}" for i in range(1, 9)),
    *(f"PERF-{i:03d}" for i in range(1, 5)),
)


def binary(name: str) -> str:
    """Path of a Prometheus tool, or skip: CI installs it (README: apt-get install prometheus)."""
    found = shutil.which(name)
    if not found and Path(f"/usr/bin/{name}").exists():
        found = f"/usr/bin/{name}"
    if not found:
        pytest.skip(f"{name} not installed (apt-get install prometheus prometheus-alertmanager)")
    return found


def run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a tool and capture its output, so a failing assertion can show what it said."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def rule_files() -> list[Path]:
    """Every rule file Prometheus loads from deploy/prometheus/rules (same glob as the stack)."""
    return sorted([*RULES_DIR.glob("*.yml"), *RULES_DIR.glob("*.yaml")])


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of every rule file, with its group name under `_group`."""
    alerts = []
    for path in rule_files():
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                if "alert" in rule:
                    alerts.append({**rule, "_group": group["name"]})
    return alerts


def contract_metrics() -> dict[str, dict[str, Any]]:
    """The metric contract as name -> entry; the contract is the source of truth for names."""
    doc = yaml.safe_load(CONTRACT.read_text()) or {}
    return {entry["name"]: entry for entry in doc.get("metrics") or []}


def contract_family(name: str, contract: dict[str, dict[str, Any]]) -> str | None:
    """The contract entry a PromQL series name belongs to (histogram `_bucket` etc. included)."""
    if name in contract:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and contract.get(base, {}).get("type") in ("histogram", "summary"):
            return base
    return None


def parse_scenarios(text: str) -> list[str]:
    """Scenario IDs from a comma-separated list (`S1,NATS-004` or `S1, NATS-004`)."""
    return [part.strip() for part in text.split(",") if part.strip()]


# ------------------------------------------------------------------------------------- PromQL
_GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "${__rate_interval}": "1m",
    "$__interval": "1m",
    "${__interval}": "1m",
    "$__range": "1h",
    "${__range}": "1h",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "bool", "inf", "nan", "atan2"}
)


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's built-in interval variables with durations so promtool can parse it."""
    for var, value in _GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers not functions, keywords or labels."""
    text = _STRING.sub('""', grafana_to_promql(expr))
    text = _MATCHERS.sub("{}", text)
    text = _BRACKETS.sub("", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
