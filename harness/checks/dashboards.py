"""Dashboard checks: the panel a scenario names shows the symptom, as a person would see it.

Every query of the panel (Grafana's variables filled as Grafana would) must return data over the
run, every series must carry the labels its legend names, and the panel must move the way the
scenario says (default: up) in the fault window against the baseline window. The router
pre-initialises its series at 0, so "has data" alone would pass with no fault at all.

A scenario may instead state per query (refId) how it must behave: `up`, `down` (the fault's
lowest point below the baseline's median), `flat` (with data, within the margin of its
baseline) or `any` (not judged here: a ratio whose denominator is idle in this scenario has no
data, as Grafana would show it). The stated queries are then the panel's symptom; each is
evaluated exactly as the dashboard has it.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.checks.base import Check, CheckResult, RunView, Window, result
from harness.checks.metrics import MAX_POINTS, MAX_SERIES
from harness.config import Strict
from harness.durations import format_duration
from harness.evidence.record import Status
from harness.prometheus import PrometheusAPI, Series

Direction = Literal["up", "down", "flat", "any"]
_LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MOVE_MARGIN = 0.1
"""A panel moved when its fault-window value is this share beyond the baseline's."""


class PanelExpectation(Strict):
    """A panel that must show the scenario's symptom."""

    dashboard: str
    panel: str
    move: Literal["up", "down"] = Field(
        "up", description="how the panel shows the symptom: some query moves this way"
    )
    queries: dict[str, Direction] = Field(
        default_factory=dict,
        description="per refId, how that query itself must behave: up, down, flat (with data), "
        "or any (not judged in this scenario, may be empty); when given, these statements are "
        "the panel's symptom",
    )


def load_dashboards(directory: Path) -> dict[str, dict[str, Any]]:
    """Dashboards by uid and by file stem."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text())
        found[path.stem] = doc
        if doc.get("uid"):
            found[doc["uid"]] = doc
    return found


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every non-row panel, including those folded inside collapsed rows."""
    out = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def fill_variables(expr: str, *, scrape: float, window: float) -> str:
    """Grafana's built-in variables as Grafana would set them for this window."""
    rate_interval = format_duration(4 * scrape)  # Grafana: four scrape intervals at least
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("${__rate_interval}", rate_interval)
        .replace("$__interval", format_duration(scrape))
        .replace("$__range", format_duration(math.ceil(window)))
    )


def legend_labels(legend: str | None) -> list[str]:
    return _LEGEND_LABEL.findall(legend or "")


@dataclass
class QueryObservation:
    ref: str
    expr: str
    legend: str | None
    series: list[Series]
    baseline: Window
    fault: Window

    def _totals(self, window: Window) -> list[float]:
        per_time: dict[float, float] = {}
        for s in self.series:
            for t, v in s.points:
                if window.start <= t <= window.end and not math.isnan(v):
                    per_time[t] = per_time.get(t, 0.0) + v
        return list(per_time.values())

    def level(self, window: Window, *, low: bool = False) -> float | None:
        values = self._totals(window)
        if not values:
            return None
        return min(values) if low else max(values)

    def typical(self, window: Window) -> float | None:
        """The median of the window: a `down` is judged against it, since a rate's window
        ramps up from zero as the baseline's workload starts."""
        values = sorted(self._totals(window))
        return values[len(values) // 2] if values else None

    def has_data(self) -> bool:
        return any(not math.isnan(v) for s in self.series for _, v in s.points)


@dataclass
class PanelObservation:
    expectation: PanelExpectation
    found: str | None  # why the panel could not be found; None when it was
    queries: list[QueryObservation] = field(default_factory=list)


def moved(direction: Direction, base: float | None, value: float | None) -> bool:
    if direction == "any":
        return True
    if base is None or value is None:
        return False
    margin = MOVE_MARGIN * abs(base)
    if direction == "up":
        return value > base + margin
    if direction == "down":
        return value < base - margin
    return abs(value - base) <= max(margin, 1e-9)


def showed(direction: Direction, base: float | None, value: float | None) -> bool:
    """`moved`, plus a line that appears: a query with no data in the baseline (a ratio over
    an idle denominator) that shows a positive value in the fault moved up, as on screen."""
    if direction == "up" and base is None and value is not None:
        return value > 0
    return moved(direction, base, value)


def judge_query(
    q: QueryObservation, wanted: Direction | None, panel_move: str | None
) -> tuple[dict[str, Any], list[str]]:
    """One query's evidence row and its failures. `wanted` is the scenario's statement for this
    refId; when None, `panel_move` is how the panel as a whole must move (None: the scenario
    states other queries only, this one must just show data)."""
    low = (wanted or panel_move) == "down"
    base = q.typical(q.baseline) if low else q.level(q.baseline)
    value = q.level(q.fault, low=low)
    row: dict[str, Any] = {
        "refId": q.ref,
        "query": q.expr,
        "legend": q.legend,
        "series": len(q.series),
        "baseline": base,
        "fault": value,
        "expected": wanted,
    }
    if wanted == "any":
        return row, []  # not judged in this scenario: no data is what Grafana would show too
    if not q.has_data():
        return row, [f"query {q.ref} returned no data"]
    failures = []
    needed = legend_labels(q.legend)
    lacking = sorted({n for s in q.series for n in needed if not s.labels.get(n)})
    if lacking:
        failures.append(f"query {q.ref}: series lack legend label(s) {', '.join(lacking)}")
    if wanted is None:
        if panel_move is not None:
            row["moved"] = showed(panel_move, base, value)  # type: ignore[arg-type]
    elif showed(wanted, base, value):
        row["moved"] = wanted in ("up", "down")
        row["flat"] = wanted == "flat"
    else:
        row["moved"] = False
        shown = "stay flat" if wanted == "flat" else f"move {wanted}"
        failures.append(f"query {q.ref} did not {shown} ({value} vs baseline {base})")
    return row, failures


def judge_panel(obs: PanelObservation) -> tuple[Status, str, list[dict[str, Any]]]:
    """Every query has data with its legend's labels, and the panel shows the symptom: the
    per-refId statements of the scenario when it gives them, else some query moves `move`."""
    spec = obs.expectation
    if obs.found is not None:
        return "fail", obs.found, []
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    if not obs.queries:
        return "fail", "the panel has no query", rows
    for q in obs.queries:
        move = None if spec.queries else spec.move
        row, failed = judge_query(q, spec.queries.get(q.ref), move)
        rows.append(row)
        failures.extend(failed)
    unknown = sorted(set(spec.queries) - {q.ref for q in obs.queries})
    if unknown:
        failures.append(f"the panel has no query {', '.join(unknown)}")
    if not spec.queries and not any(r.get("moved") for r in rows):
        failures.append(f"no query moved {spec.move} in the fault window: the symptom is not shown")
    if failures:
        return "fail", "; ".join(failures), rows
    if spec.queries:
        stated = ", ".join(f"{ref} {d}" for ref, d in sorted(spec.queries.items()))
        return "pass", f"{len(obs.queries)} queries; as stated: {stated}", rows
    return "pass", f"{len(obs.queries)} queries with data; the panel moved {spec.move}", rows


class PanelCheck(Check):
    kind = "dashboard"

    def __init__(self, spec: PanelExpectation, prometheus: PrometheusAPI, dashboards_dir: Path):
        super().__init__(f"panel {spec.dashboard} / {spec.panel}")
        self.spec = spec
        self.prometheus = prometheus
        self.dashboards_dir = dashboards_dir

    def _panel(self) -> tuple[dict[str, Any] | None, str | None]:
        dashboards = load_dashboards(self.dashboards_dir)
        dashboard = dashboards.get(self.spec.dashboard)
        if dashboard is None:
            return None, f"no dashboard {self.spec.dashboard!r} in {self.dashboards_dir}"
        panel = next((p for p in panels(dashboard) if p.get("title") == self.spec.panel), None)
        if panel is None:
            return None, f"dashboard {self.spec.dashboard!r} has no panel {self.spec.panel!r}"
        return panel, None

    async def collect(self, run: RunView) -> PanelObservation:
        panel, missing = self._panel()
        if panel is None:
            return PanelObservation(self.spec, missing)
        baseline, fault = run.baseline(), run.fault_window()
        if baseline is None or fault is None:
            return PanelObservation(self.spec, "the run ended before the fault window")
        scrape = run.target.profile.scrape_interval
        end = time.time()  # the whole scenario, baseline to recovery, like a dashboard snapshot
        step = max(scrape, (end - baseline.start) / MAX_POINTS, 1.0)
        queries = []
        for target in panel.get("targets", []):
            expr = fill_variables(target.get("expr", ""), scrape=scrape, window=fault.length)
            series = await self.prometheus.range(expr, baseline.start, end, step)
            queries.append(
                QueryObservation(
                    target.get("refId", "?"),
                    expr,
                    target.get("legendFormat"),
                    series,
                    baseline,
                    fault,
                )
            )
        return PanelObservation(self.spec, None, queries)

    def judge(self, observed: PanelObservation) -> CheckResult:
        status, summary, rows = judge_panel(observed)
        evidence: dict[str, Any] = {"expected": self.spec.model_dump(), "queries": rows}
        for row, q in zip(rows, observed.queries, strict=False):
            row["result"] = [
                {"labels": s.labels, "points": s.points} for s in q.series[:MAX_SERIES]
            ]
            row["truncated"] = max(0, len(q.series) - MAX_SERIES)
        return result(self, status, summary, evidence)
