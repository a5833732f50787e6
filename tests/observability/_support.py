"""Shared helpers for the observability-contract tests: paths, binaries, contract, PromQL names."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.checks.dashboards import fill_variables
from harness.promql import base_metric, metric_names  # noqa: F401 - shared with the tests
from harness.rulefiles import alert_rules as harness_alert_rules
from harness.rulefiles import rule_files as harness_rule_files

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
    *(f"CL-{i:03d}" for i in range(1, 9)),  # the cluster scenarios (scenarios/cluster/)
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
    return harness_rule_files(RULES_DIR)


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of every rule file, with its group name under `_group`."""
    return [
        {**rule, "_group": group["name"]}
        for rule, group, _ in harness_alert_rules(RULES_DIR).values()
    ]


@functools.cache
def contract_metrics() -> dict[str, dict[str, Any]]:
    """The metric contract as name -> entry; the contract is the source of truth for names.
    Read once per session (many parametrized tests ask); callers must not change it."""
    doc = yaml.safe_load(CONTRACT.read_text()) or {}
    nats = doc.get("nats_exporter") or {}
    entries = [
        *(doc.get("metrics") or []),
        *(nats.get("metrics") or []),
        *(nats.get("official") or []),
    ]
    return {entry["name"]: entry for entry in entries}


def contract_family(name: str, contract: dict[str, dict[str, Any]]) -> str | None:
    """The contract entry a PromQL series name belongs to (histogram `_bucket` etc. included)."""
    histograms = {n for n, e in contract.items() if e.get("type") in ("histogram", "summary")}
    family = base_metric(name, histograms)
    return family if family in contract else None


def rule_test_cases(test_files: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Every `alert_rule_test` case of some promtool test files, with its file."""
    cases = []
    for test_file in test_files:
        doc = yaml.safe_load(test_file.read_text())
        for group in doc.get("tests") or []:
            cases += [(test_file, case) for case in group.get("alert_rule_test") or []]
    return cases


def markdown_anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings, as GitHub derives them."""
    return {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in path.read_text().splitlines()
        if line.startswith("#")
    }


def parse_scenarios(text: str) -> list[str]:
    """Scenario IDs from a comma-separated list (`S1,NATS-004` or `S1, NATS-004`)."""
    return [part.strip() for part in text.split(",") if part.strip()]


# ------------------------------------------------------------------------------------- PromQL
def grafana_to_promql(expr: str) -> str:
    """Grafana's built-in interval variables as durations (15 s scrape, 1 h range), so promtool
    can parse the panel query."""
    return fill_variables(expr, scrape=15.0, window=3600.0)
