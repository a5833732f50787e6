"""What each plot shows, taken from a scenario's evidence and nothing else (pure, no drawing).

Kept apart from the drawing so the choice of data (which series, which windows, which
objective) is unit-tested and the plotting library stays replaceable. Times stay Unix
seconds; the drawing puts them on the scenario's own clock (seconds since its baseline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.evidence.record import CheckResult, Phase, ScenarioResult

if TYPE_CHECKING:
    from harness.checks.alerts import AlertEvidence, ForbiddenEvidence
    from harness.checks.dashboards import PanelEvidence, PanelQuery
    from harness.checks.metrics import MetricEvidence, QueryRecord, SeriesRecord

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
    said: str = ""  # what the judge made of it, as the plot's title says


def query_said(q: PanelQuery) -> str:
    """One judged query in a few words: its statement (if the scenario made one) and whether
    it held; older evidence and panels checked as a whole say moved / did not move."""
    if q.expected == "any":
        return "any: not judged here"
    if q.expected == "flat":
        return "flat: stayed flat" if q.flat else "flat: did not stay flat"
    if q.moved is None:
        return "shown, not judged" if q.has_data() else "no data"
    said = "moved" if q.moved else "did not move"
    return f"{q.expected}: {said}" if q.expected else said


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


def _varying(series: list[SeriesRecord]) -> list[str]:
    keys = sorted({k for s in series for k in s.labels} - {"__name__"})
    return [k for k in keys if len({s.labels.get(k) for s in series}) > 1]


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


def lines_of(series: list[SeriesRecord], wanted: dict[str, str] | None = None) -> list[Line]:
    """One line per series; those matching `wanted` labels emphasised (all when none)."""
    varying = _varying(series)
    return [
        Line(
            _label(s.labels, varying),
            _points(s.points),
            not wanted or all(s.labels.get(k) == v for k, v in wanted.items()),
        )
        for s in series
    ]


def metric_figure(check: CheckResult, result: ScenarioResult) -> MetricFigure:
    e: MetricEvidence = check.evidence  # type: ignore[assignment]
    expected = e.expected
    window = e.window
    judged = (window[1], e.value) if window and e.value is not None else None
    figure_spans = spans(result)
    if expected is not None and expected.window == "recovery" and window:
        figure_spans.append(Span(window[0], window[1], "recovery"))
    recovery = _points(e.recovery.points) if e.recovery else []
    wanted = expected.labels if expected else {}
    query = expected.query if expected else ""
    over_run = e.series
    error = None
    if over_run is not None and over_run.error is None:
        lines = lines_of(over_run.series, wanted)
        source = f"range series over the scenario, step {over_run.step or 0:g}s"
        if over_run.rolling_window:
            source += f", $window as a rolling {over_run.rolling_window}"
        if over_run.truncated:
            source += f"; {over_run.truncated} more series not recorded (cap)"
        query = over_run.query or query
    else:
        if over_run is not None:
            error = f"range series could not be read: {over_run.error}"
        lines, source = _from_queries(e.queries, wanted)
    return MetricFigure(
        title=check.name,
        status=check.status,
        summary=check.summary,
        query=query,
        lines=lines,
        spans=figure_spans,
        baseline=e.baseline,
        judged=judged,
        recovery=recovery,
        source=source,
        error=error,
    )


def _from_queries(queries: list[QueryRecord], wanted: dict[str, str]) -> tuple[list[Line], str]:
    """Evidence without a range series (an older record): the check's own query results."""
    from harness.checks.metrics import SeriesRecord

    lines: list[Line] = []
    instants: list[Point] = []
    for q in queries:
        if q.range is not None:
            lines += lines_of([r for r in q.result if isinstance(r, SeriesRecord)], wanted)
        elif q.value is not None and q.evaluated_at is not None:
            instants.append((q.evaluated_at, q.value))
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
    """An expected or forbidden alert's states over the scenario; an expected one's with the
    objectives it was judged by and its receipts."""
    from harness.checks.alerts import AlertEvidence

    e: AlertEvidence | ForbiddenEvidence = check.evidence  # type: ignore[assignment]
    rule = e.loaded_rule
    expected = isinstance(e, AlertEvidence)
    evaluation = e.evaluation_interval_s if isinstance(e, AlertEvidence) else None
    step = float((rule.group_interval_s if rule else 0.0) or evaluation or 1.0)
    pending = [t for i in e.alerts_series for t in i.pending]
    firing = [t for i in e.alerts_series for t in i.firing]
    segments = _merge(pending, step, "pending") + _merge(firing, step, "firing")
    markers: list[Marker] = []
    if isinstance(e, AlertEvidence):
        if e.resolved_at:
            segments.append(Segment(e.resolved_at, scenario_end(result), "resolved"))
        markers = _alert_markers(e)
    return AlertStrip(
        alert=e.alert or check.name,
        role="expected" if expected else "forbidden",
        status=check.status,
        segments=sorted(segments, key=lambda s: s.start),
        markers=sorted(markers, key=lambda m: m.at),
    )


def _alert_markers(e: AlertEvidence) -> list[Marker]:
    markers: list[Marker] = []
    fault, healed = e.fault_start, e.healed_at
    if fault is not None:
        markers.append(Marker(fault, "fault", "fault applied"))
        if e.objective_s is not None:
            markers.append(
                Marker(fault + e.objective_s, "objective", f"objective {e.objective_s:g}s")
            )
        if e.notify_objective_s is not None:
            markers.append(
                Marker(
                    fault + e.notify_objective_s,
                    "notify_objective",
                    f"notification objective {e.notify_objective_s:g}s",
                )
            )
        if e.floor_s is not None:
            markers.append(Marker(fault + e.floor_s, "floor", f"rule floor {e.floor_s:g}s"))
    if healed is not None:
        markers.append(Marker(healed, "healed", "healed"))
        if e.resolve_objective_s is not None:
            markers.append(
                Marker(
                    healed + e.resolve_objective_s,
                    "resolve_objective",
                    f"resolve objective {e.resolve_objective_s:g}s",
                )
            )
    for seen in e.alertmanager:
        if seen.at is not None:
            markers.append(Marker(seen.at, "alertmanager", f"Alertmanager: {seen.state}"))
    for note in e.notifications:
        markers.append(
            Marker(
                note.received_at,
                f"notification_{note.status or 'firing'}",
                f"{note.status} → {note.receiver}",
            )
        )
    return markers


def panel_figure(check: CheckResult, result: ScenarioResult) -> PanelFigure:
    e: PanelEvidence = check.evidence  # type: ignore[assignment]
    queries = [
        QueryPlot(
            ref=q.refId,
            expr=q.query,
            lines=lines_of(q.result),
            baseline=q.baseline,
            fault=q.fault,
            moved=q.moved,
            said=query_said(q),
        )
        for q in e.queries
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
    """Every figure of one scenario's section, as each check's kind draws it."""
    from harness.checks.registry import check_class

    figures = ScenarioFigures(
        origin(result), scenario_end(result), timeline_figure(result), spans(result)
    )
    for check in result.checks:
        kind = check_class(check.kind)
        figure = kind.figure(check, result)
        if figure is not None and kind.figure_group is not None:
            getattr(figures, kind.figure_group).append(figure)
    return figures
