"""Coverage rules of the catalogue: every panel and every metric family is exercised live, or
says why not.

- A panel that names a scenario (its description's `Scenarios:` line) is checked by that
  scenario; where the panel shows several queries, the scenario states each refId (up, down,
  flat, or any: not judged there), a check of `any` only judges nothing, and every query is
  stated up, down or flat by at least one of the scenarios the panel names.
- Every family of the metric contract (the router's and the NATS exporter's) is moved, or
  shown flat, by at least one scenario's check (a metric query, or a stated panel query), or
  carries `out_of_scope:` with a one-line reason in the contract.

What a panel or a metric must do comes from the scenarios; the dashboards and the contract are
only read for what they contain (the queries, the families). Pure: the loaders are the caller's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks.dashboards import PanelExpectation, load_dashboards, panels
from harness.promql import base_metric, metric_names
from harness.scenario import Scenario
from harness.yamlfile import Problem, load_yaml

_IDS = re.compile(r"\b(?:S\d+|[A-Z][A-Z0-9]*-\d{3})(?:@[a-z][a-z0-9-]*)?\b")
_SCENARIOS_LINE = re.compile(r"Scenarios?:\s*([^\n]*)")
SHOWN = frozenset({"up", "down", "flat"})
"""Statements that show a family works: it moved, or it stayed flat with data where it must."""


@dataclass(frozen=True)
class CoverageProblem:
    """One coverage gap: what it is about (a panel, a family) and what is wrong."""

    subject: str
    message: str
    dashboard: str = ""  # the dashboard a panel problem is about

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


def scenario_ids(text: str) -> list[str]:
    """The scenario IDs (with any `@variant`) a text names, in order, once each: a panel's
    `Scenarios:` line, a rule's `scenarios` annotation."""
    return list(dict.fromkeys(_IDS.findall(text or "")))


def panel_scenarios(panel: dict[str, Any]) -> list[str]:
    """The scenario IDs on a panel's `Scenarios:` description line."""
    found = _SCENARIOS_LINE.search(panel.get("description") or "")
    return scenario_ids(found.group(1)) if found else []


def unique_dashboards(
    dashboards: dict[str, dict[str, Any]],
) -> list[tuple[str, dict[str, Any]]]:
    """(name, dashboard) once each; `load_dashboards` keys a dashboard by uid and by file stem."""
    seen: dict[int, tuple[str, dict[str, Any]]] = {}
    for key, doc in dashboards.items():
        seen.setdefault(id(doc), (doc.get("uid") or key, doc))
    return list(seen.values())


def _refs(panel: dict[str, Any]) -> dict[str, str]:
    return {t.get("refId", "?"): t.get("expr", "") for t in panel.get("targets", [])}


def stated(spec: PanelExpectation, panel: dict[str, Any]) -> dict[str, str]:
    """refId → what the scenario states for it. A single-query panel checked without per-query
    statements moves the way the expectation's `move` says."""
    if spec.queries:
        return dict(spec.queries)
    refs = list(_refs(panel))
    return {refs[0]: spec.move} if len(refs) == 1 else {}


def _checks(
    scenario: Scenario, dashboards: dict[str, dict[str, Any]], dashboard: dict[str, Any], title: str
) -> PanelExpectation | None:
    for spec in scenario.expect.dashboards:
        if dashboards.get(spec.dashboard) is dashboard and spec.panel == title:
            return spec
    return None


def panel_problems(
    scenarios: Iterable[Scenario], dashboards: dict[str, dict[str, Any]]
) -> list[CoverageProblem]:
    """Panels a named scenario does not check, multi-query panels checked without a statement
    per query, statements about queries the panel lacks, queries no scenario judges."""
    by_id: dict[str, Scenario] = {}
    for s in scenarios:
        if "@" not in s.id:
            by_id[s.id] = s
            for alias in s.aliases:
                by_id.setdefault(alias, s)
    problems: list[CoverageProblem] = []
    for name, dashboard in unique_dashboards(dashboards):
        for panel in panels(dashboard):
            title = panel.get("title", "")
            subject = f"panel {name} / {title}"

            def add(message: str, subject: str = subject, name: str = name) -> None:
                problems.append(CoverageProblem(subject, message, dashboard=name))

            refs = _refs(panel)
            named = panel_scenarios(panel)
            judged: set[str] = set()
            for sid in named:
                scenario = by_id.get(sid)
                if scenario is None:
                    add(f"names {sid}, not in the catalogue")
                    continue
                spec = _checks(scenario, dashboards, dashboard, title)
                if spec is None:
                    add(f"names scenario {sid} which does not check it")
                    continue
                says = stated(spec, panel)
                silent = [r for r in refs if r not in says]
                if len(refs) > 1 and silent:
                    add(
                        f"{sid} states nothing for query {', '.join(silent)} (a multi-query "
                        "panel needs up, down, flat or any per refId)"
                    )
                unknown = sorted(set(says) - set(refs))
                if unknown:
                    add(f"{sid} states query {', '.join(unknown)}, which the panel does not have")
                if says and all(d == "any" for d in says.values()):
                    add(f"{sid} states `any` for every query: it judges nothing on the panel")
                judged |= {r for r, d in says.items() if d in SHOWN}
            for ref in refs if named else []:
                if ref not in judged:
                    add(
                        f"query {ref} is stated up, down or flat by none of the scenarios the "
                        "panel names, so nothing shows it works"
                    )
    return problems


def contract_families(contract: dict[str, Any]) -> list[dict[str, Any]]:
    """Every family of the metric contract: the router's, and the NATS exporter's (ours and the
    official ones it serves)."""
    nats = contract.get("nats_exporter") or {}
    return [
        *(contract.get("metrics") or []),
        *(nats.get("metrics") or []),
        *(nats.get("official") or []),
    ]


def out_of_scope(contract: dict[str, Any]) -> dict[str, str]:
    """Family → the contract's one-line reason it is not checked live."""
    return {
        m["name"]: str(m["out_of_scope"]).strip()
        for m in contract_families(contract)
        if "out_of_scope" in m
    }


def _families(query: str, histograms: set[str]) -> set[str]:
    return {base_metric(n, histograms) for n in metric_names(query)}


def shown_families(
    scenarios: Iterable[Scenario], dashboards: dict[str, dict[str, Any]], histograms: set[str]
) -> dict[str, set[str]]:
    """Family → the scenarios whose checks show it moving or flat: a metric query with a
    condition relative to the baseline, or a panel query stated up, down or flat."""
    shown: dict[str, set[str]] = {}
    for s in scenarios:
        names: set[str] = set()
        for m in s.expect.metrics:
            if m.moved in SHOWN or m.ratio_at_least is not None or m.delta_above is not None:
                names |= _families(m.query, histograms)
        for spec in s.expect.dashboards:
            dashboard = dashboards.get(spec.dashboard)
            panel = next((p for p in panels(dashboard or {}) if p.get("title") == spec.panel), None)
            if panel is None:
                continue
            refs = _refs(panel)
            for ref, direction in stated(spec, panel).items():
                if direction in SHOWN and ref in refs:
                    names |= _families(refs[ref], histograms)
        for name in names:
            shown.setdefault(name, set()).add(s.id)
    return shown


def family_problems(
    scenarios: Iterable[Scenario], dashboards: dict[str, dict[str, Any]], contract: dict[str, Any]
) -> list[CoverageProblem]:
    """Families no scenario moves or shows flat and that the contract does not put out of
    scope; an out-of-scope mark without a reason."""
    metrics = contract_families(contract)
    histograms = {m["name"] for m in metrics if m.get("type") == "histogram"}
    shown = shown_families(scenarios, dashboards, histograms)
    reasons = out_of_scope(contract)
    problems: list[CoverageProblem] = []
    for m in metrics:
        name = m["name"]
        if name in reasons:
            if not reasons[name]:
                problems.append(CoverageProblem(f"family {name}", "out_of_scope needs a reason"))
        elif name not in shown:
            problems.append(
                CoverageProblem(
                    f"family {name}",
                    "neither checked by a scenario (moved or shown flat) nor out of scope",
                )
            )
    return problems


def coverage_problems(
    scenarios: Iterable[Scenario], dashboards: dict[str, dict[str, Any]], contract: dict[str, Any]
) -> list[CoverageProblem]:
    """Every panel and family rule over the loaded scenarios, dashboards and metric contract."""
    scenarios = list(scenarios)
    return panel_problems(scenarios, dashboards) + family_problems(scenarios, dashboards, contract)


def catalogue_coverage_problems(
    scenarios: dict[str, tuple[Scenario, Path]], deploy: Path
) -> list[Problem]:
    """`harness validate`'s view: the rules over the project's files, each problem on the file
    it is about (the dashboard, or the metric contract)."""
    dashboards_dir = deploy / "grafana" / "dashboards"
    contract_path = deploy / "metrics-contract.yaml"
    dashboards = load_dashboards(dashboards_dir) if dashboards_dir.is_dir() else {}
    contract = load_yaml(contract_path)[0] if contract_path.is_file() else {}
    models = [s for s, _ in scenarios.values()]
    files = {
        name: dashboards_dir / f"{stem}.json"
        for stem in (p.stem for p in dashboards_dir.glob("*.json"))
        for name, doc in unique_dashboards(dashboards)
        if dashboards.get(stem) is doc
    }
    out = [
        Problem(str(files.get(p.dashboard, dashboards_dir)), None, "", str(p))
        for p in panel_problems(models, dashboards)
    ]
    out += [
        Problem(str(contract_path), None, "", str(p))
        for p in family_problems(models, dashboards, contract or {})
    ]
    return out
