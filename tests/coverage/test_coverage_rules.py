"""The catalogue's coverage rules on small synthetic dashboards, contracts and scenarios, and on
the shipped files: a panel a named scenario does not check, a multi-query panel checked without
a statement per refId, a query nothing judges, a family neither shown nor out of scope."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.checks.dashboards import load_dashboards, panels
from harness.coverage_rules import (
    catalogue_coverage_problems,
    coverage_problems,
    family_problems,
    out_of_scope,
    panel_problems,
    panel_scenarios,
    scenario_ids,
    shown_families,
    unique_dashboards,
)
from harness.paths import deploy_dir, project_root
from harness.report.inventory import load_inventory
from harness.scenario import Scenario, load_scenarios


def dashboard(*panels: dict[str, Any]) -> dict[str, dict[str, Any]]:
    doc = {"uid": "dash", "panels": [{"type": "row", "title": "r", "panels": list(panels)}]}
    return {"dash": doc, "dash-file": doc}  # as load_dashboards keys it: uid and file stem


def panel(title: str, names: str, **queries: str) -> dict[str, Any]:
    return {
        "title": title,
        "description": f"What it shows.\nScenarios: {names}",
        "targets": [{"refId": r, "expr": e} for r, e in queries.items()],
    }


def scenario(sid: str, *, metrics: list[dict] | None = None, dashboards: list[dict] | None = None):
    return Scenario.model_validate(
        {
            "id": sid,
            "title": sid,
            "faults": [{"kind": "poison", "fraction": 0.1, "why": "test", "duration": "1m"}],
            "expect": {"metrics": metrics or [], "dashboards": dashboards or []},
        }
    )


def checks(title: str, **queries: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"dashboard": "dash", "panel": title}
    if queries:
        spec["queries"] = queries
    return spec


ONE = panel("One", "S1, S2", A="sum(rate(router_a_total[$__rate_interval]))")
TWO = panel(
    "Two",
    "S1",
    A="sum(rate(router_a_total[5m])) / sum(rate(router_b_total[5m]))",
    B="sum(rate(router_c_total[$__rate_interval]))",
)


def messages(problems) -> list[str]:
    return [str(p) for p in problems]


def test_panel_scenarios_reads_the_description_line() -> None:
    assert panel_scenarios(ONE) == ["S1", "S2"]
    assert panel_scenarios({"description": "no line"}) == []


def test_the_inventory_reads_panels_and_rules_with_the_same_id_rule() -> None:
    """One ID rule for the validator and the report's inventory: the inventory's panel
    scenarios are exactly what validation reads from each panel's description."""
    assert scenario_ids("S1, JS-002@above and NATS-004; S1 (not s2, JS-02)") == [
        "S1",
        "JS-002@above",
        "NATS-004",
    ]
    inventory = load_inventory(project_root() / "scenarios")
    dashboards = unique_dashboards(load_dashboards(deploy_dir() / "grafana" / "dashboards"))
    expected = [tuple(panel_scenarios(p)) for _, d in dashboards for p in panels(d)]
    assert [p.scenarios for p in inventory.panels] == expected
    assert any(expected)


def test_a_named_scenario_that_does_not_check_the_panel() -> None:
    found = messages(panel_problems([scenario("S1", dashboards=[checks("One")]),
                                     scenario("S2")], dashboard(ONE)))  # fmt: skip
    assert found == ["panel dash / One: names scenario S2 which does not check it"]


def test_a_panel_naming_an_unknown_scenario() -> None:
    found = messages(panel_problems([scenario("S1", dashboards=[checks("One")])], dashboard(ONE)))
    assert found == ["panel dash / One: names S2, not in the catalogue"]


def test_a_multi_query_panel_needs_a_statement_per_ref_and_each_ref_judged_somewhere() -> None:
    silent = messages(panel_problems([scenario("S1", dashboards=[checks("Two")])], dashboard(TWO)))
    assert any("S1 states nothing for query A, B" in p for p in silent), silent
    assert any("query A is stated up, down or flat by none" in p for p in silent), silent
    half = messages(
        panel_problems(
            [scenario("S1", dashboards=[checks("Two", A="up", B="any")])], dashboard(TWO)
        )
    )
    assert half == [
        "panel dash / Two: query B is stated up, down or flat by none of the scenarios the panel "
        "names, so nothing shows it works"
    ]
    ok = panel_problems(
        [scenario("S1", dashboards=[checks("Two", A="up", B="flat")])], dashboard(TWO)
    )
    assert ok == []


def test_all_any_judges_nothing_and_unknown_refs_are_named() -> None:
    found = messages(
        panel_problems(
            [scenario("S1", dashboards=[checks("Two", A="any", B="any", C="up")])], dashboard(TWO)
        )
    )
    assert any("S1 states query C, which the panel does not have" in p for p in found), found
    found = messages(
        panel_problems(
            [scenario("S1", dashboards=[checks("Two", A="any", B="any")])], dashboard(TWO)
        )
    )
    assert any("states `any` for every query: it judges nothing" in p for p in found), found


CONTRACT = {
    "metrics": [
        {"name": "router_a_total", "type": "counter"},
        {"name": "router_b_total", "type": "counter"},
        {"name": "router_c_total", "type": "counter"},
        {"name": "router_h_seconds", "type": "histogram"},
        {"name": "router_cfg", "type": "gauge", "out_of_scope": "set once at start-up"},
        {"name": "router_bare", "type": "gauge", "out_of_scope": " "},
    ]
}


def test_families_shown_by_metric_checks_and_stated_panel_queries() -> None:
    scenarios = [
        scenario(
            "S1",
            metrics=[
                {
                    "query": "histogram_quantile(0.9, rate(router_h_seconds_bucket[$window]))",
                    "moved": "up",
                },
                {"query": "sum(rate(router_c_total[$window]))", "moved": "flat"},
            ],  # fmt: skip
            dashboards=[checks("Two", A="up", B="any")],
        )
    ]
    shown = shown_families(scenarios, dashboard(TWO), {"router_h_seconds"})
    # A's ratio names a and b; B is `any`, so c counts only through its flat metric check
    assert set(shown) == {"router_a_total", "router_b_total", "router_c_total", "router_h_seconds"}
    assert messages(family_problems(scenarios, dashboard(TWO), CONTRACT)) == [
        "family router_bare: out_of_scope needs a reason"
    ]
    assert out_of_scope(CONTRACT)["router_cfg"] == "set once at start-up"


def test_a_family_nobody_shows_and_a_read_without_a_relative_condition() -> None:
    scenarios = [
        scenario(
            "S1",
            metrics=[{"query": "sum(rate(router_a_total[$window]))", "recover_within": "1m"}],
            dashboards=[checks("One")],
        )
    ]
    found = messages(family_problems(scenarios, dashboard(ONE), CONTRACT))
    # router_a_total is shown by the panel (single query, default move up); b, c, h are not
    assert [p.split(":")[0] for p in found] == [
        "family router_b_total",
        "family router_c_total",
        "family router_h_seconds",
        "family router_bare",
    ]
    assert "neither checked by a scenario (moved or shown flat) nor out of scope" in found[0]


def test_coverage_problems_is_both_rules() -> None:
    scenarios = [scenario("S1", dashboards=[checks("One")])]
    both = coverage_problems(scenarios, dashboard(ONE), CONTRACT)
    assert len(both) == len(panel_problems(scenarios, dashboard(ONE))) + len(
        family_problems(scenarios, dashboard(ONE), CONTRACT)
    )


def test_the_shipped_catalogue_covers_every_panel_and_family() -> None:
    """Every panel is checked by each scenario it names, every family is shown or out of scope
    with a reason (the figure `harness validate` enforces)."""
    scenarios = project_root() / "scenarios"
    catalogue = load_scenarios(scenarios) | load_scenarios(scenarios / "cluster")
    assert any(s.topology == "cluster" for s, _ in catalogue.values())
    problems = catalogue_coverage_problems(catalogue, deploy_dir())
    assert problems == []


def test_validate_fails_on_a_panel_a_named_scenario_does_not_check(tmp_path: Path) -> None:
    """`harness validate` over a project whose dashboard names S2 on a panel S2 does not check,
    and whose contract lost one out-of-scope reason: both are problems, exit 1."""
    deploy = tmp_path / "project" / "deploy"
    shutil.copytree(deploy_dir(), deploy)
    path = deploy / "grafana" / "dashboards" / "router-jetstream.json"
    text = path.read_text()
    assert text.count('Scenarios: PERF-004"') == 2  # Backpressure Status and Triggers
    path.write_text(text.replace('Scenarios: PERF-004"', 'Scenarios: PERF-004, S2"', 1))
    contract = deploy / "metrics-contract.yaml"
    lines = contract.read_text().splitlines(keepends=True)
    (at,) = [
        i for i, ln in enumerate(lines) if "out_of_scope:" in ln and "configuration echo" in ln
    ]
    contract.write_text("".join(lines[:at] + lines[at + 1 :]))
    (tmp_path / "project" / "scenarios").symlink_to(project_root() / "scenarios")
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_RUN_DIR",)}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "validate"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path / "project",
        env={**env, "HARNESS_PROJECT_DIR": str(tmp_path / "project"), "COLUMNS": "1000"},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Backpressure Status: names scenario S2 which does not check it" in done.stderr
    assert (
        "family router_jetstream_redelivery_backoff_ms: neither checked by a scenario"
        in done.stderr
    )
