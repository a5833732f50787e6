"""What each plot shows, taken from a scenario's evidence and nothing else (pure, no drawing).

Kept apart from the drawing so the choice of data (which series, which windows, which
objective) is unit-tested and the plotting library stays replaceable. Times stay Unix
seconds; the drawing puts them on the scenario's own clock (seconds since its baseline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness.evidence.record import CheckResult, Phase, ScenarioResult

Point = tuple[float, float]


@dataclass
class Line:
    label: str
    points: list[Point]
    emphasis: bool = True
    joined: bool = True  # False: separate observations (instant queries), drawn as points


@dataclass
class Span:
    start: float
    end: float
    kind: str  # baseline | fault | recovery


@dataclass
class Marker:
    at: float
    kind: str  # fault | healed | objective | floor | resolve_objective | notification | ...
    label: str


@dataclass
class MetricFigure:
    """A metric check: the series over the scenario, windows, baseline and the judged value."""

    title: str
    status: str
    summary: str
    query: str
    lines: list[Line]
    spans: list[Span]
    baseline: float | None
    judged: Point | None
    recovery: list[Point]
    source: str
    error: str | None = None


@dataclass
class Segment:
    start: float
    end: float
    state: str  # pending | firing | resolved


@dataclass
class AlertStrip:
    """One alert's states over the scenario, with the contract's objectives and receipts."""

    alert: str
    role: str  # expected | forbidden
    status: str
    segments: list[Segment]
    markers: list[Marker]


@dataclass
class QueryPlot:
    ref: str
    expr: str
    lines: list[Line]
    baseline: float | None
    fault: float | None
    moved: bool | None


@dataclass
class PanelFigure:
    """A dashboard panel as small multiples: one plot per query, like a dashboard snapshot."""

    title: str
    status: str
    summary: str
    queries: list[QueryPlot]
    spans: list[Span]


@dataclass
class TimelineFigure:
    """Phases and faults of a scenario on one axis."""

    phases: list[tuple[str, float, float, str]]
    faults: list[tuple[str, float, float | None, bool]]  # label, applied, healed at, proven
    end: float


@dataclass
class ScenarioFigures:
    origin: float
    end: float
    timeline: TimelineFigure
    spans: list[Span] = field(default_factory=list)
    metrics: list[MetricFigure] = field(default_factory=list)
    alerts: list[AlertStrip] = field(default_factory=list)
    panels: list[PanelFigure] = field(default_factory=list)


def origin(result: ScenarioResult) -> float:
    """The scenario's clock starts with its baseline (else with the scenario)."""
    span = result.span(Phase.BASELINE)
    return span.start if span else result.started_at


def scenario_end(result: ScenarioResult) -> float:
    ends = [p.end for p in result.phases if p.end] + [result.ended_at or result.started_at]
    return max(ends)


def fault_window(result: ScenarioResult) -> tuple[float, float] | None:
    """The record's fault window, ending at the scenario's end while a fault was never
    proven healed (the report is written later; "now" would stretch it)."""
    applied = [f.applied_at for f in result.faults if f.applied_at is not None]
    if not applied:
        return None
    healed = [f.heal.at for f in result.faults if f.applied_at and f.heal and f.heal.healed]
    unhealed = any(f.applied_at and not (f.heal and f.heal.healed) for f in result.faults)
    return min(applied), scenario_end(result) if unhealed or not healed else max(healed)


def spans(result: ScenarioResult) -> list[Span]:
    out = []
    base = result.span(Phase.BASELINE)
    if base and base.end:
        out.append(Span(base.start, base.end, "baseline"))
    window = fault_window(result)
    if window:
        out.append(Span(window[0], window[1], "fault"))
    return out


def _label(labels: dict[str, str], varying: list[str]) -> str:
    shown = {k: labels.get(k, "") for k in varying}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) if shown else "value"


def _varying(series: list[dict[str, Any]]) -> list[str]:
    keys = sorted({k for s in series for k in s.get("labels", {})} - {"__name__"})
    return [k for k in keys if len({s.get("labels", {}).get(k) for s in series}) > 1]


def _points(raw: list[Any]) -> list[Point]:
    out = []
    for p in raw:
        try:
            t, v = float(p[0]), float(p[1])
        except (TypeError, ValueError, IndexError):
            continue
        if not math.isnan(t):
            out.append((t, v))
    return out


def lines_of(series: list[dict[str, Any]], wanted: dict[str, str] | None = None) -> list[Line]:
    """One line per series; those matching `wanted` labels emphasised (all when none)."""
    varying = _varying(series)
    return [
        Line(
            _label(s.get("labels", {}), varying),
            _points(s.get("points", [])),
            not wanted or all(s.get("labels", {}).get(k) == v for k, v in wanted.items()),
        )
        for s in series
    ]


def metric_figure(check: CheckResult, result: ScenarioResult) -> MetricFigure:
    e = check.evidence
    expected = e.get("expected") or {}
    window = e.get(f"{expected.get('window', 'fault')}_window")
    judged = (window[1], e["value"]) if window and e.get("value") is not None else None
    figure_spans = spans(result)
    if expected.get("window") == "recovery" and window:
        figure_spans.append(Span(window[0], window[1], "recovery"))
    recovery = _points((e.get("recovery") or {}).get("points") or [])
    wanted = expected.get("labels") or {}
    over_run = e.get("series")
    error = None
    if isinstance(over_run, dict) and "series" in over_run:
        lines = lines_of(over_run["series"], wanted)
        source = f"range series over the scenario, step {over_run.get('step', 0):g}s"
        if over_run.get("rolling_window"):
            source += f", $window as a rolling {over_run['rolling_window']}"
        if over_run.get("truncated"):
            source += f"; {over_run['truncated']} more series not recorded (cap)"
        query = over_run.get("query", expected.get("query", ""))
    else:
        if isinstance(over_run, dict) and over_run.get("error"):
            error = f"range series could not be read: {over_run['error']}"
        lines, source = _from_queries(e.get("queries") or [], wanted)
        query = expected.get("query", "")
    return MetricFigure(
        title=check.name,
        status=check.status,
        summary=check.summary,
        query=query,
        lines=lines,
        spans=figure_spans,
        baseline=e.get("baseline"),
        judged=judged,
        recovery=recovery,
        source=source,
        error=error,
    )


def _from_queries(queries: list[dict[str, Any]], wanted: dict[str, str]) -> tuple[list[Line], str]:
    """Evidence without a range series (an older record): the check's own query results."""
    lines: list[Line] = []
    instants: list[Point] = []
    for q in queries:
        if "range" in q:
            lines += lines_of(q.get("result") or [], wanted)
        elif q.get("value") is not None and q.get("evaluated_at") is not None:
            instants.append((float(q["evaluated_at"]), float(q["value"])))
    if instants:
        lines.append(Line("instant values", sorted(instants), joined=False))
    return lines, "no range series in this evidence: the check's own query results"


def _merge(times: list[float], step: float, state: str) -> list[Segment]:
    """Evaluation times → contiguous segments; each evaluation holds for one step."""
    out: list[Segment] = []
    for t in sorted(times):
        if out and t <= out[-1].end + 0.5 * step:
            out[-1].end = t + step
        else:
            out.append(Segment(t, t + step, state))
    return out


def alert_strip(check: CheckResult, result: ScenarioResult) -> AlertStrip:
    e = check.evidence
    rule = e.get("loaded_rule") or {}
    step = float(rule.get("group_interval_s") or e.get("evaluation_interval_s") or 1.0)
    instances = e.get("alerts_series") or []
    pending = [t for i in instances for t in i.get("pending", [])]
    firing = [t for i in instances for t in i.get("firing", [])]
    segments = _merge(pending, step, "pending") + _merge(firing, step, "firing")
    end = scenario_end(result)
    if e.get("resolved_at"):
        segments.append(Segment(float(e["resolved_at"]), end, "resolved"))
    markers: list[Marker] = []
    fault, healed = e.get("fault_start"), e.get("healed_at")
    if check.kind == "alert" and fault is not None:
        markers.append(Marker(fault, "fault", "fault applied"))
        if e.get("objective_s") is not None:
            markers.append(
                Marker(fault + e["objective_s"], "objective", f"objective {e['objective_s']:g}s")
            )
        if e.get("notify_objective_s") is not None:
            markers.append(
                Marker(
                    fault + e["notify_objective_s"],
                    "notify_objective",
                    f"notification objective {e['notify_objective_s']:g}s",
                )
            )
        if e.get("floor_s") is not None:
            markers.append(Marker(fault + e["floor_s"], "floor", f"rule floor {e['floor_s']:g}s"))
    if check.kind == "alert" and healed is not None:
        markers.append(Marker(healed, "healed", "healed"))
        if e.get("resolve_objective_s") is not None:
            markers.append(
                Marker(
                    healed + e["resolve_objective_s"],
                    "resolve_objective",
                    f"resolve objective {e['resolve_objective_s']:g}s",
                )
            )
    for seen in e.get("alertmanager") or []:
        if seen.get("at") is not None:
            markers.append(Marker(seen["at"], "alertmanager", f"Alertmanager: {seen.get('state')}"))
    for note in e.get("notifications") or []:
        markers.append(
            Marker(
                note["received_at"],
                f"notification_{note.get('status', 'firing')}",
                f"{note.get('status')} → {note.get('receiver')}",
            )
        )
    return AlertStrip(
        alert=str(e.get("alert", check.name)),
        role="expected" if check.kind == "alert" else "forbidden",
        status=check.status,
        segments=sorted(segments, key=lambda s: s.start),
        markers=sorted(markers, key=lambda m: m.at),
    )


def panel_figure(check: CheckResult, result: ScenarioResult) -> PanelFigure:
    queries = [
        QueryPlot(
            ref=str(row.get("refId", "?")),
            expr=str(row.get("query", "")),
            lines=lines_of(row.get("result") or []),
            baseline=row.get("baseline"),
            fault=row.get("fault"),
            moved=row.get("moved"),
        )
        for row in check.evidence.get("queries") or []
    ]
    return PanelFigure(check.name, check.status, check.summary, queries, spans(result))


def timeline_figure(result: ScenarioResult) -> TimelineFigure:
    end = scenario_end(result)
    phases = [(p.phase.value, p.start, p.end or end, p.status) for p in result.phases]
    faults = []
    for f in result.faults:
        if f.applied_at is None:
            continue
        what = f.spec.get("type") or f.spec.get("action") or f.kind
        label = f"{f.kind}:{what}" if what != f.kind else f.kind
        healed_at = f.heal.at if f.heal else None
        faults.append((label, f.applied_at, healed_at, bool(f.heal and f.heal.healed)))
    return TimelineFigure(phases, faults, end)


def scenario_figures(result: ScenarioResult) -> ScenarioFigures:
    """Every figure of one scenario's section."""
    figures = ScenarioFigures(
        origin(result), scenario_end(result), timeline_figure(result), spans(result)
    )
    for check in result.checks:
        if check.kind == "metric":
            figures.metrics.append(metric_figure(check, result))
        elif check.kind in ("alert", "alert_forbidden"):
            figures.alerts.append(alert_strip(check, result))
        elif check.kind == "dashboard":
            figures.panels.append(panel_figure(check, result))
    return figures
