"""The coverage matrix, computed from live evidence: scenario × tests, metrics, alerts, dashboards.

A cell is *covered* only when every check of that column passed in the scenario's latest run,
*partial* when some failed or errored, *none* when nothing exercised it, and *stale* when its
last observation is older than the configured age. Each cell names the run and the time it was
verified. The inverse lists say what a hand-kept matrix never does: what no run exercised.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.checks.base import CoverageFacts
from harness.checks.registry import check_class
from harness.evidence.record import CheckResult, ScenarioResult
from harness.promql import base_metric, metric_names
from harness.report.inventory import Inventory, id_order
from harness.report.runs import LoadedRun, histories, junit_cases

COVERAGE_SCHEMA = "harness.coverage/v1"
COLUMNS: tuple[str, ...] = ("tests", "metrics", "alerts", "dashboards")
"""`tests` (the JUnit cases), then the column each check kind fills (`Check.column`)."""
CellStatus = Literal["covered", "partial", "none", "stale"]
DEFAULT_STALE_AFTER_S = 30 * 24 * 3600.0

INVERSE_TITLES: dict[str, str] = {
    "alerts_never_fired": "Alert rules no scenario fired",
    "forbidden_never_proven_alive": "Forbidden alerts never proven alive",
    "metrics_never_moved": "Contract metrics no scenario moved (or showed flat)",
    "metrics_out_of_scope": "Contract metrics declared out of scope for live checks",
    "panels_never_showed_symptom": "Panels that never showed a symptom",
    "scenarios_not_run": "Catalogue scenarios that did not run",
}


@dataclass
class Element:
    """One checked thing inside a cell: a JUnit case, a metric query, an alert, a panel."""

    name: str
    status: str  # pass | fail | error
    summary: str = ""


@dataclass
class Cell:
    """One scenario × column of the matrix."""

    column: str
    status: CellStatus
    observed: CellStatus  # what the evidence says, before ageing (never "stale")
    run_id: str | None = None
    verified_at: float | None = None
    elements: list[Element] = field(default_factory=list)
    last_covered: dict[str, Any] | None = None  # {run_id, at} of the newest covered result

    @property
    def failing(self) -> list[Element]:
        return [e for e in self.elements if e.status != "pass"]


@dataclass
class Row:
    """One scenario of the matrix (catalogue or evidence)."""

    scenario_id: str
    base_id: str
    title: str
    aliases: list[str]
    verdict: str  # the latest verdict, or "not run"
    run_id: str | None
    cells: dict[str, Cell]
    in_catalogue: bool = True


@dataclass
class Gap:
    """One entry of an inverse list."""

    item: str
    detail: str = ""


@dataclass
class Coverage:
    """The whole matrix plus the inverse lists."""

    generated_at: float
    stale_after_s: float
    runs: list[str]
    rows: list[Row]
    inverse: dict[str, list[Gap]]

    def row(self, scenario_id: str) -> Row | None:
        return next((r for r in self.rows if r.scenario_id == scenario_id), None)

    def document(self) -> dict[str, Any]:
        """The JSON form written to `coverage.json`."""
        return {
            "schema": COVERAGE_SCHEMA,
            "generated_at": self.generated_at,
            "stale_after_s": self.stale_after_s,
            "runs": self.runs,
            "columns": list(COLUMNS),
            "rows": [asdict(r) for r in self.rows],
            "inverse": {k: [asdict(g) for g in v] for k, v in self.inverse.items()},
        }


def observed_status(elements: list[Element]) -> CellStatus:
    """covered when all passed, partial when some failed or errored, none when empty."""
    if not elements:
        return "none"
    return "covered" if all(e.status == "pass" for e in elements) else "partial"


def _check_elements(checks: list[CheckResult]) -> list[Element]:
    return [Element(c.name, c.status, c.summary) for c in checks]


def cell_elements(
    column: str, result: ScenarioResult, cases: list[Any]
) -> tuple[list[Element], float | None]:
    """The elements of one column of a scenario's result, and when they were last observed."""
    if column == "tests":
        return (
            [Element(c.name, c.status, c.message) for c in cases],
            result.ended_at or result.started_at,
        )
    checks = [c for c in result.checks if check_class(c.kind).column == column]
    ends = [c.ended_at for c in checks if c.ended_at is not None]
    return _check_elements(checks), max(ends) if ends else result.ended_at


def merge_status(statuses: list[CellStatus]) -> CellStatus:
    """One status for several cells (a scenario and its variants): partial beats stale beats
    covered; cells with nothing observed do not count."""
    seen = [s for s in statuses if s != "none"]
    if not seen:
        return "none"
    for status in ("partial", "stale"):
        if status in seen:
            return status  # type: ignore[return-value]
    return "covered"


def compute_coverage(
    runs: list[LoadedRun],
    inventory: Inventory,
    *,
    now: float | None = None,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> Coverage:
    """The matrix of the scenarios' latest results, aged at `now`, with the inverse lists."""
    now = time.time() if now is None else now
    cases = {run.run_id: junit_cases(run.record) for run in runs}
    rows: dict[str, Row] = {}
    for history in histories(runs):
        latest = history.latest
        cells: dict[str, Cell] = {}
        for column in COLUMNS:
            elements, at = cell_elements(
                column, latest, cases[history.latest_run.run_id].get(latest.scenario_id, [])
            )
            observed = observed_status(elements)
            stale = observed != "none" and at is not None and now - at > stale_after_s
            cell = Cell(
                column, "stale" if stale else observed, observed, latest.run_id, at, elements
            )
            for run, result in history.results:
                older, when = cell_elements(
                    column, result, cases[run.run_id].get(result.scenario_id, [])
                )
                if observed_status(older) == "covered":
                    cell.last_covered = {"run_id": result.run_id, "at": when}
                    break
            cells[column] = cell
        entry = inventory.scenarios.get(latest.scenario_id)
        rows[latest.scenario_id] = Row(
            latest.scenario_id,
            latest.base_id,
            latest.title,
            list(dict.fromkeys([*latest.aliases, *(entry.aliases if entry else ())])),
            latest.verdict,
            latest.run_id,
            cells,
            in_catalogue=entry is not None,
        )
    for entry in inventory.scenarios.values():
        if entry.id not in rows:
            rows[entry.id] = Row(
                entry.id,
                entry.base_id,
                entry.title,
                list(entry.aliases),
                "not run",
                None,
                {c: Cell(c, "none", "none") for c in COLUMNS},
            )
    ordered = sorted(rows.values(), key=lambda r: id_order(r.scenario_id))
    return Coverage(
        generated_at=now,
        stale_after_s=stale_after_s,
        runs=[r.run_id for r in runs],
        rows=ordered,
        inverse=inverse_lists(runs, inventory),
    )


def _facts(runs: list[LoadedRun]) -> list[tuple[ScenarioResult, CoverageFacts]]:
    """What every check of every run proves, as its kind says."""
    return [
        (s, check_class(c.kind).facts(c))
        for run in runs
        for s in run.record.scenarios
        for c in s.checks
    ]


def inverse_lists(runs: list[LoadedRun], inventory: Inventory) -> dict[str, list[Gap]]:
    """What no run exercised: rules never fired, forbidden alerts never shown able to fire,
    contract metrics never moved, panels never showing a symptom, scenarios never run."""
    facts = _facts(runs)
    fired = {a for _, f in facts for a in f.alerts_fired}
    proven = {a for _, f in facts for a in f.alerts_proven}
    forbidden: dict[str, list[str]] = {}
    for scenario, f in facts:
        for alert in f.alerts_forbidden:
            forbidden.setdefault(alert, []).append(scenario.scenario_id)
    moved, read = _metrics_moved([f for _, f in facts], inventory.histograms)
    shown = {p for _, f in facts for p in f.panels_shown}
    ran = {s.scenario_id for run in runs for s in run.record.scenarios}
    return {
        "alerts_never_fired": [
            Gap(a, f"{r.file}; says it covers {', '.join(r.scenarios) or 'no scenario'}")
            for a, r in sorted(inventory.rules.items())
            if a not in fired
        ],
        "forbidden_never_proven_alive": [
            Gap(a, f"forbidden in {', '.join(sorted(set(s)))}; no run showed it firing")
            for a, s in sorted(forbidden.items())
            if a not in proven
        ],
        "metrics_never_moved": [
            Gap(m, "read by checks, never shown moving" if m in read else "no check reads it")
            for m in sorted(inventory.metrics)
            if m not in moved and m not in inventory.out_of_scope
        ],
        "metrics_out_of_scope": [Gap(m, r) for m, r in sorted(inventory.out_of_scope.items())],
        "panels_never_showed_symptom": [
            Gap(p.key, f"names {', '.join(p.scenarios)}" if p.scenarios else "names no scenario")
            for p in inventory.panels
            if p.key not in shown
        ],
        "scenarios_not_run": [
            Gap(s.id, s.title)
            for s in sorted(inventory.scenarios.values(), key=lambda s: id_order(s.id))
            if s.id not in ran
        ],
    }


def _metrics_moved(facts: list[CoverageFacts], histograms: set[str]) -> tuple[set[str], set[str]]:
    """(metrics a passing check showed moving, or flat where the scenario says it must stay
    flat, metrics any check read)."""

    def names(query: str) -> set[str]:
        return {base_metric(n, histograms) for n in metric_names(query)}

    read = {n for f in facts for q in f.queries_read for n in names(q)}
    moved = {n for f in facts for q in f.queries_moved for n in names(q)}
    return moved, read
