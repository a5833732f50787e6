"""Dashboard checks: the panel a scenario names shows the symptom, as a person would see it.

Every query of the panel (its range windows compressed by the profile's factor as the rules'
are, Grafana's variables filled as Grafana would) must return data over the run, every series
must carry the labels its legend names, and the panel must move the way the scenario says
(default: up) in the fault window against the baseline window. The router pre-initialises its
series at 0, so "has data" alone would pass with no fault at all. The evidence keeps every
series each query returned over the scenario: the judge's whole input.

A scenario may instead state per query (refId) how it must behave: `up`, `down` (the fault's
lowest point below the baseline's median), `flat` (with data, within the margin of its
baseline) or `any` (not judged here: a ratio whose denominator is idle in this scenario has no
data, as Grafana would show it). The stated queries are then the panel's symptom; each is
evaluated as the dashboard has it, on the profile's clock.

Why compress: a `[5m]` window read uncompressed on a ÷30 slot spans ten times the scenario, so
it shows mostly the previous scenario on the slot (S1's ACK-failure ratio once read 39 % in its
baseline, left by NATS-004). Compressed, it spans what five production minutes would.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

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
from harness.config import Profile, Strict
from harness.durations import format_duration
from harness.evidence.record import CheckEvidence, ScenarioResult, Status
from harness.paths import deploy_dir
from harness.timecompress import compress_promql, longest_range_s

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


def as_run(expr: str, profile: Profile, *, window: float) -> str:
    """The panel's query on the profile's clock: its written ranges compressed as the rules'
    are, then Grafana's variables, which are on the local clock already, filled in."""
    floor_ms = round(profile.min_range * 1000)
    compressed = compress_promql(expr, profile.time_compression, floor_ms)
    return fill_variables(compressed, scrape=profile.scrape_interval, window=window)


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
    expected: Direction | None = Field(
        None, description="judged: the scenario's statement for this refId, if it made one"
    )
    flat: bool | None = Field(None, description="judged: stayed flat with data, as stated")

    @model_serializer(mode="wrap")
    def _drop_unstated(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """`expected` and `flat` only where a statement was judged: evidence without them (a
        panel checked as a whole, or recorded before statements) keeps its shape."""
        data = handler(self)
        for key in ("expected", "flat"):
            if data.get(key) is None:
                data.pop(key, None)
        return data

    def totals(self, window: tuple[float, float]) -> list[float]:
        per_time: dict[float, float] = {}
        for s in self.result:
            for t, v in s.points:
                if window[0] <= t <= window[1] and not math.isnan(v):
                    per_time[t] = per_time.get(t, 0.0) + v
        return list(per_time.values())

    def level(self, window: tuple[float, float], *, low: bool = False) -> float | None:
        values = self.totals(window)
        if not values:
            return None
        return min(values) if low else max(values)

    def typical(self, window: tuple[float, float]) -> float | None:
        """The median of the window: a `down` is judged against it, since a rate's window
        ramps up from zero as the baseline's workload starts."""
        values = sorted(self.totals(window))
        return values[len(values) // 2] if values else None

    def has_data(self) -> bool:
        return any(not math.isnan(v) for s in self.result for _, v in s.points)


class PanelEvidence(CheckEvidence):
    """The panel's queries over the scenario, with the windows they are judged in."""

    expected: PanelExpectation | None = None
    missing: str | None = Field(None, description="why the panel could not be read")
    baseline_window: tuple[float, float] | None = None
    fault_window: tuple[float, float] | None = None
    queries: list[PanelQuery] = Field(default_factory=list)


def moved(
    direction: Direction, base: float | None, value: float | None, margin: float | None = None
) -> bool:
    """`value` beyond `base` by `margin` (default: MOVE_MARGIN of the baseline)."""
    if direction == "any":
        return True
    if base is None or value is None:
        return False
    if margin is None:
        margin = MOVE_MARGIN * abs(base)
    if direction == "up":
        return value > base + margin
    if direction == "down":
        return value < base - margin
    return abs(value - base) <= max(margin, 1e-9)


def showed(
    direction: Direction, base: float | None, value: float | None, margin: float | None = None
) -> bool:
    """`moved`, plus a line that appears: a query with no data in the baseline (a ratio over
    an idle denominator) that shows a positive value in the fault moved up, as on screen."""
    if direction == "up" and base is None and value is not None:
        return value > 0
    return moved(direction, base, value, margin)


def history_margin(
    q: PanelQuery, windows: tuple[tuple[float, float], tuple[float, float]]
) -> float | None:
    """For a query whose range reaches back past the scenario's start (the dashboard's 24 h "top
    assignments", even compressed): twice its spread in the baseline. Its value counts earlier
    scenarios' events on the slot too, so a margin relative to it would measure that history,
    not the fault; its baseline wobbles only by rate's extrapolation at the edges. None: the
    default relative margin applies."""
    baseline, fault = windows
    if longest_range_s(q.query) <= fault[1] - baseline[0]:
        return None
    values = q.totals(baseline)
    return 2 * (max(values) - min(values)) if values else None


def settled(q: PanelQuery, baseline: tuple[float, float]) -> tuple[float, float]:
    """The baseline without its first range of the query (at most half the baseline): a point
    there still counts the slot's previous scenario, whose last events can sit seconds before
    this baseline began (a consumer bind at JS-003's end once read as 0.33 binds/s in NATS-005's
    first 2 s, and its stated-flat binds then "fell" to 0 in the fault)."""
    start, end = baseline
    skip = min(longest_range_s(q.query), (end - start) / 2)
    return (start + skip, end)


def judge_query(
    q: PanelQuery,
    windows: tuple[tuple[float, float], tuple[float, float]],
    wanted: Direction | None,
    panel_move: Direction | None,
) -> tuple[PanelQuery, list[str]]:
    """One query judged: its row and its failures. `wanted` is the scenario's statement for
    this refId; when None, `panel_move` is how the panel as a whole must move (None: the
    scenario states other queries only, this one must just show data)."""
    baseline, fault = windows
    margin = history_margin(q, windows)
    low = (wanted or panel_move) == "down"
    steady = settled(q, baseline)
    base = q.typical(steady) if low else q.level(steady)
    value = q.level(fault, low=low)
    row = q.model_copy(
        update={
            "series": len(q.result),
            "baseline": base,
            "fault": value,
            "moved": None,
            "expected": wanted,
            "flat": None,
        }
    )
    if wanted == "any":
        return row, []  # not judged in this scenario: no data is what Grafana would show too
    if not q.has_data():
        return row, [f"query {q.refId} returned no data"]
    failures = []
    needed = legend_labels(q.legend)
    lacking = sorted({n for s in q.result for n in needed if not s.labels.get(n)})
    if lacking:
        failures.append(f"query {q.refId}: series lack legend label(s) {', '.join(lacking)}")
    if wanted is None:
        if panel_move is not None:
            row.moved = showed(panel_move, base, value, margin)
    elif showed(wanted, base, value, margin):
        row.moved = wanted in ("up", "down")
        row.flat = wanted == "flat"
    else:
        row.moved = False
        shown = "stay flat" if wanted == "flat" else f"move {wanted}"
        failures.append(f"query {q.refId} did not {shown} ({value} vs baseline {base})")
    return row, failures


def judge_panel(obs: PanelEvidence) -> tuple[Status, str, PanelEvidence]:
    """Every query has data with its legend's labels, and the panel shows the symptom: the
    per-refId statements of the scenario when it gives them, else some query moves `move`."""
    spec = obs.expected
    if spec is None:
        return "error", "the evidence keeps no expectation", obs
    if obs.missing is not None:
        return "fail", obs.missing, obs
    if not obs.queries:
        return "fail", "the panel has no query", obs
    if obs.baseline_window is None or obs.fault_window is None:
        return "error", "the evidence keeps no baseline and fault windows", obs
    windows = (obs.baseline_window, obs.fault_window)
    move = None if spec.queries else spec.move
    rows: list[PanelQuery] = []
    failures: list[str] = []
    for q in obs.queries:
        row, failed = judge_query(q, windows, spec.queries.get(q.refId), move)
        rows.append(row)
        failures.extend(failed)
    judged = obs.model_copy(update={"queries": rows})
    unknown = sorted(set(spec.queries) - {q.refId for q in obs.queries})
    if unknown:
        failures.append(f"the panel has no query {', '.join(unknown)}")
    if not spec.queries and not any(r.moved for r in rows):
        failures.append(f"no query moved {spec.move} in the fault window: the symptom is not shown")
    if failures:
        return "fail", "; ".join(failures), judged
    if spec.queries:
        stated = ", ".join(f"{ref} {d}" for ref, d in sorted(spec.queries.items()))
        return "pass", f"{len(obs.queries)} queries; as stated: {stated}", judged
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
        profile = run.target.profile
        scrape = profile.scrape_interval
        end = time.time()  # the whole scenario, baseline to recovery, like a dashboard snapshot
        step = max(scrape, (end - baseline.start) / MAX_POINTS, 1.0)
        queries = []
        for target in panel.get("targets", []):
            expr = as_run(target.get("expr", ""), profile, window=fault.length)
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
            # a query stated flat that stayed flat with data shows its families work too
            facts.queries_moved = [q.query for q in evidence.queries if q.moved or q.flat]
            if evidence.expected is not None:
                facts.panels_shown = {f"{evidence.expected.dashboard} / {evidence.expected.panel}"}
        return facts
