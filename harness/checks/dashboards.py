"""Dashboard checks: the panel a scenario names shows the symptom, as a person would see it.

Every query of the panel (Grafana's variables filled as Grafana would) must return data over the
run, every series must carry the labels its legend names, and the panel must move the way the
scenario says (default: up) in the fault window against the baseline window. The router
pre-initialises its series at 0, so "has data" alone would pass with no fault at all. The
evidence keeps every series each query returned over the scenario: the judge's whole input.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from harness.checks.base import (
    Check,
    CheckResult,
    CoverageFacts,
    JudgeContext,
    Judged,
    Raw,
    RunView,
    Setup,
)
from harness.checks.metrics import MAX_POINTS, Record, SeriesRecord
from harness.config import Strict
from harness.durations import format_duration
from harness.evidence.record import CheckEvidence, ScenarioResult, Status
from harness.paths import deploy_dir

if TYPE_CHECKING:
    from harness.prometheus import PrometheusAPI
    from harness.scenario import Scenario

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
        default_factory=dict, description="per refId, how that query itself must move"
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


class PanelQuery(Record):
    """One query of the panel: its expression as run, legend, every series it returned over
    the scenario, and what the judge read of it in the baseline and fault windows."""

    refId: str = "?"  # Grafana's name
    query: str = ""
    legend: str | None = None
    result: list[SeriesRecord] = Field(default_factory=list)
    truncated: int = Field(0, description="older evidence: series returned but not recorded")
    series: int | None = None  # judged: how many series
    baseline: float | None = None  # judged
    fault: float | None = None  # judged
    moved: bool | None = None  # judged

    def _totals(self, window: tuple[float, float]) -> list[float]:
        per_time: dict[float, float] = {}
        for s in self.result:
            for t, v in s.points:
                if window[0] <= t <= window[1] and not math.isnan(v):
                    per_time[t] = per_time.get(t, 0.0) + v
        return list(per_time.values())

    def level(self, window: tuple[float, float], *, low: bool = False) -> float | None:
        values = self._totals(window)
        if not values:
            return None
        return min(values) if low else max(values)

    def has_data(self) -> bool:
        return any(not math.isnan(v) for s in self.result for _, v in s.points)


class PanelEvidence(CheckEvidence):
    """The panel's queries over the scenario, with the windows they are judged in."""

    expected: PanelExpectation | None = None
    missing: str | None = Field(None, description="why the panel could not be read")
    baseline_window: tuple[float, float] | None = None
    fault_window: tuple[float, float] | None = None
    queries: list[PanelQuery] = Field(default_factory=list)


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


def judge_panel(obs: PanelEvidence) -> tuple[Status, str, PanelEvidence]:
    """Every query has data with its legend's labels, and the panel shows the symptom."""
    spec = obs.expected
    if spec is None:
        return "error", "the evidence keeps no expectation", obs
    if obs.missing is not None:
        return "fail", obs.missing, obs
    if not obs.queries:
        return "fail", "the panel has no query", obs
    if obs.baseline_window is None or obs.fault_window is None:
        return "error", "the evidence keeps no baseline and fault windows", obs
    failures: list[str] = []
    rows = []
    any_moved = False
    for q in obs.queries:
        low = spec.move == "down"
        base, value = q.level(obs.baseline_window, low=low), q.level(obs.fault_window, low=low)
        row = q.model_copy(
            update={"series": len(q.result), "baseline": base, "fault": value, "moved": None}
        )
        rows.append(row)
        if not q.has_data():
            failures.append(f"query {q.refId} returned no data")
            continue
        needed = legend_labels(q.legend)
        lacking = sorted({n for s in q.result for n in needed if not s.labels.get(n)})
        if lacking:
            failures.append(f"query {q.refId}: series lack legend label(s) {', '.join(lacking)}")
        row.moved = moved(spec.move, base, value)
        any_moved = any_moved or row.moved
        wanted = spec.queries.get(q.refId)
        if wanted is not None and not moved(wanted, base, value):
            failures.append(f"query {q.refId} did not move {wanted} ({value} vs baseline {base})")
    judged = obs.model_copy(update={"queries": rows})
    unknown = sorted(set(spec.queries) - {q.refId for q in obs.queries})
    if unknown:
        failures.append(f"the panel has no query {', '.join(unknown)}")
    if not any_moved:
        failures.append(f"no query moved {spec.move} in the fault window: the symptom is not shown")
    if failures:
        return "fail", "; ".join(failures), judged
    return "pass", f"{len(obs.queries)} queries with data; the panel moved {spec.move}", judged


class PanelCheck(Check):
    kind = "dashboard"
    evidence_model = PanelEvidence
    column = "dashboards"
    figure_group = "panels"
    expects = ("dashboards", list[PanelExpectation], Field(default_factory=list))

    def __init__(self, spec: PanelExpectation, prometheus: PrometheusAPI, dashboards_dir: Path):
        super().__init__(f"panel {spec.dashboard} / {spec.panel}")
        self.spec = spec
        self.prometheus = prometheus
        self.dashboards_dir = dashboards_dir

    @classmethod
    def build(cls, scenario: Scenario, setup: Setup) -> list[Check]:
        dashboards = (
            Path(setup.target.dashboards_dir)
            if setup.target.dashboards_dir
            else deploy_dir() / "grafana" / "dashboards"
        )
        return [cls(p, setup.prometheus, dashboards) for p in scenario.expect.dashboards]

    def _panel(self) -> tuple[dict[str, Any] | None, str | None]:
        dashboards = load_dashboards(self.dashboards_dir)
        dashboard = dashboards.get(self.spec.dashboard)
        if dashboard is None:
            return None, f"no dashboard {self.spec.dashboard!r} in {self.dashboards_dir}"
        panel = next((p for p in panels(dashboard) if p.get("title") == self.spec.panel), None)
        if panel is None:
            return None, f"dashboard {self.spec.dashboard!r} has no panel {self.spec.panel!r}"
        return panel, None

    async def collect(self, run: RunView) -> PanelEvidence:
        panel, missing = self._panel()
        if panel is None:
            return PanelEvidence(expected=self.spec, missing=missing)
        baseline, fault = run.baseline(), run.fault_window()
        if baseline is None or fault is None:
            return PanelEvidence(
                expected=self.spec, missing="the run ended before the fault window"
            )
        scrape = run.target.profile.scrape_interval
        end = time.time()  # the whole scenario, baseline to recovery, like a dashboard snapshot
        step = max(scrape, (end - baseline.start) / MAX_POINTS, 1.0)
        queries = []
        for target in panel.get("targets", []):
            expr = fill_variables(target.get("expr", ""), scrape=scrape, window=fault.length)
            series = await self.prometheus.range(expr, baseline.start, end, step)
            queries.append(
                PanelQuery(
                    refId=target.get("refId", "?"),
                    query=expr,
                    legend=target.get("legendFormat"),
                    result=[SeriesRecord(labels=s.labels, points=s.points) for s in series],
                )
            )
        return PanelEvidence(
            expected=self.spec,
            baseline_window=(baseline.start, baseline.end),
            fault_window=(fault.start, fault.end),
            queries=queries,
        )

    @classmethod
    def judge(cls, evidence: PanelEvidence, ctx: JudgeContext) -> Judged:
        status, summary, evidence = judge_panel(evidence)
        return Judged(status, summary, evidence)

    @classmethod
    def raw(cls, evidence: PanelEvidence) -> list[Raw]:
        return [
            Raw(f"query {q.refId}", q.query, [s.model_dump(mode="json") for s in q.result])
            for q in evidence.queries
        ] or super().raw(evidence)

    @classmethod
    def figure(cls, check: CheckResult, result: ScenarioResult) -> Any:
        from harness.report.figures import panel_figure

        return panel_figure(check, result)

    @classmethod
    def facts(cls, check: CheckResult) -> CoverageFacts:
        evidence: PanelEvidence = check.evidence  # type: ignore[assignment]
        facts = CoverageFacts(queries_read=[q.query for q in evidence.queries])
        if check.status == "pass":
            facts.queries_moved = [q.query for q in evidence.queries if q.moved]
            if evidence.expected is not None:
                facts.panels_shown = {f"{evidence.expected.dashboard} / {evidence.expected.panel}"}
        return facts
