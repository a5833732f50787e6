"""Grafana dashboard: catalogue panels, valid PromQL on contract metrics, scenario IDs per panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._support import (
    DASHBOARD,
    SCENARIO_IDS,
    binary,
    contract_family,
    contract_metrics,
    grafana_to_promql,
    metric_names,
    parse_scenarios,
    run,
)

SECTIONS = [
    "Overview",
    "Redelivery",
    "MaxDeliver and DLQ",
    "NATS Connection and Operations",
    "Performance and Capacity",
    "NATS Cluster",
]
# Panel names of scenario-catalogue.md §3 / §7 that scenarios refer to.
CATALOGUE_PANELS = [
    "Redelivery Rate by Assignment",
    "Redelivery Rate by Tenant",
    "Redelivery vs Successful Processing",
    "Redeliveries by Delivery Count",
    "Redeliveries by Reason",
    "MaxDeliver Exhausted Rate (Overall)",
    "MaxDeliver Exhausted by Assignment",
    "Top Assignments by MaxDeliver Exhausted",
    "DLQ Inflow Rate (Total)",
    "DLQ by Reason",
    "DLQ by Assignment",
    "DLQ by Tenant",
    "NATS Connection Failures by Reason",
    "NATS Connection Status",
    "NATS Reconnection Failures by Reason",
    "NATS Publish Failures by Reason",
    "NATS Publish Failures by Subject",
    "NATS Subscribe Failures by Reason",
    "NATS ACK Failures by Reason",
    "NATS NAK Failures by Reason",
    "Pending Operations Queue",
    "Correlation: NATS Failures vs Redeliveries",
    "Processing Latency (P50/P95/P99)",
    "Queue Depth (Pending Messages)",
    "In-Flight Messages",
    "Backpressure Status",
    "Backpressure Triggers",
    "Processing Rate vs Queue Depth",
]
_SCENARIOS_LINE = re.compile(r"^Scenarios:\s*(.+)$", re.MULTILINE)

DOC: dict[str, Any] = json.loads(DASHBOARD.read_text())
PANELS = [p for p in DOC["panels"] if p["type"] != "row"]
ROWS = [p for p in DOC["panels"] if p["type"] == "row"]


def panel_scenarios(panel: dict[str, Any]) -> list[str]:
    """The IDs on a panel's `Scenarios:` description line (the coverage-matrix hook)."""
    match = _SCENARIOS_LINE.search(panel.get("description", ""))
    return parse_scenarios(match.group(1)) if match else []


def test_dashboard_model() -> None:
    assert DOC["uid"] == "router-jetstream"
    assert DOC["schemaVersion"] >= 36
    ids = [p["id"] for p in DOC["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in DOC["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]


def test_sections_are_rows_in_order() -> None:
    assert [row["title"] for row in ROWS] == SECTIONS


def test_catalogue_panels_present() -> None:
    titles = [p["title"] for p in PANELS]
    missing = [t for t in CATALOGUE_PANELS if t not in titles]
    assert not missing, missing
    assert len(titles) == len(set(titles)), "panel titles must be unique (scenarios name them)"


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_panel_queries_and_datasource(panel: dict[str, Any]) -> None:
    datasource = {"type": "prometheus", "uid": "prometheus"}
    assert panel["datasource"] == datasource
    assert panel["targets"], "panel has no query"
    refs = [t["refId"] for t in panel["targets"]]
    assert len(refs) == len(set(refs))
    for target in panel["targets"]:
        assert target["datasource"] == datasource
        assert target["expr"].strip()


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_panel_names_its_scenarios(panel: dict[str, Any]) -> None:
    scenarios = panel_scenarios(panel)
    assert scenarios, "description needs a 'Scenarios: ID, ID' line"
    unknown = set(scenarios) - set(SCENARIO_IDS)
    assert not unknown, sorted(unknown)


def test_every_scenario_has_a_panel() -> None:
    covered = {sid for panel in PANELS for sid in panel_scenarios(panel)}
    assert [sid for sid in SCENARIO_IDS if sid not in covered] == []


def test_panel_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool has no bare parser: one recording rule per query, then `check rules`."""
    promtool = binary("promtool")
    rules = [
        {
            "record": f"dashboard:panel_{panel['id']}:{target['refId'].lower()}",
            "expr": grafana_to_promql(target["expr"]),
        }
        for panel in PANELS
        for target in panel["targets"]
    ]
    rules_file = tmp_path / "dashboard-queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([promtool, "check", "rules", str(rules_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_panel_metrics_are_in_contract(panel: dict[str, Any]) -> None:
    contract = contract_metrics()
    assert panel["targets"], "a panel with no query shows nothing"
    for target in panel["targets"]:
        names = metric_names(target["expr"])
        assert names, f"no metric in {target['expr']!r}"
        unknown = sorted(n for n in names if contract_family(n, contract) is None)
        assert not unknown, f"{target['refId']}: not in deploy/metrics-contract.yaml: {unknown}"
