"""The figures drawn as static SVG with matplotlib (Agg, no display, no network, no fonts to
fetch): text stays text, so the report is searchable and small.

Every plot is on the scenario's own clock, seconds since its baseline began, so a metric, an
alert strip and a panel of one scenario line up when read one under the other.
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.report.figures import (
    AlertStrip,
    Line,
    MetricFigure,
    PanelFigure,
    ScenarioFigures,
    Span,
    TimelineFigure,
)

STATUS_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#9a6700"}
STATE_COLOURS = {"pending": "#d4a72c", "firing": "#cf222e", "resolved": "#8fd19e"}
SPAN_COLOURS = {"baseline": "#ddf4ff", "fault": "#ffebe9", "recovery": "#fff8c5"}
PHASE_COLOURS = {
    "preflight": "#d0d7de",
    "baseline": "#54aeff",
    "inject": "#fb8f44",
    "observe": "#ff8182",
    "heal": "#4ac26b",
    "recover": "#a8e6b4",
    "verdict": "#8c959f",
}
LINE_COLOURS = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#57606a"]
MARKER_STYLES = {
    "fault": ("#cf222e", "-"),
    "healed": ("#1a7f37", "-"),
    "objective": ("#0550ae", "--"),
    "notify_objective": ("#8250df", "-."),
    "floor": ("#6e7781", ":"),
    "resolve_objective": ("#1a7f37", "--"),
}
RECEIPTS = {
    "notification_firing": ("v", "#cf222e"),
    "notification_resolved": ("v", "#1a7f37"),
    "alertmanager": ("o", "#8250df"),
}
MAX_LEGEND = 6
TITLE_CHARS = 84  # a metric plot's title is its query; the full text is in the checks table
WIDTH_IN = 7.6
RC = {
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "path.simplify": True,
}
_HEAD = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_META = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def to_svg(figure: Figure, ident: str, label: str, kind: str) -> str:
    """The figure as an inline `<svg>` element: no XML prolog or metadata, stable ids (salted
    with `ident`, unique within a report), marked for readers and tests."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": ident}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = _META.sub("", _HEAD.sub("", buffer.getvalue(), count=1), count=1)
    label = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace(
        "<svg ", f'<svg class="plot plot-{kind}" role="img" aria-label="{label}" ', 1
    ).strip()


def _figure(
    height: float, left: float = 0.75, right: float = 1.9, bottom: float = 0.42, top: float = 0.3
) -> Figure:
    """A figure with fixed margins in inches (a layout engine would cost more than the
    drawing): room on the left for tick labels and on the right for the legend."""
    figure = Figure(figsize=(WIDTH_IN, height))
    figure.subplots_adjust(
        left=left / WIDTH_IN,
        right=1 - right / WIDTH_IN,
        bottom=bottom / height,
        top=1 - top / height,
        hspace=0.75,
        wspace=0.3,
    )
    return figure


def _shade(ax, spans: list[Span], origin: float, legend: bool = True) -> None:
    for s in spans:
        ax.axvspan(
            s.start - origin,
            s.end - origin,
            color=SPAN_COLOURS[s.kind],
            zorder=0,
            label=f"{s.kind} window" if legend else None,
        )


def _draw_lines(ax, lines: list[Line], origin: float) -> None:
    strong = [line for line in lines if line.emphasis]
    for i, line in enumerate(strong):
        xs = [t - origin for t, _ in line.points]
        ys = [v for _, v in line.points]
        label = line.label if i < MAX_LEGEND else None
        style = "-" if line.joined else "o"
        ax.plot(
            xs,
            ys,
            style,
            color=LINE_COLOURS[i % len(LINE_COLOURS)],
            lw=1.4,
            ms=3.5,
            label=label,
            zorder=3,
        )
    others = [line for line in lines if not line.emphasis]
    for j, line in enumerate(others):
        xs = [t - origin for t, _ in line.points]
        ys = [v for _, v in line.points]
        label = f"{len(others)} other series" if j == 0 else None
        ax.plot(xs, ys, color="#afb8c1", lw=0.8, label=label, zorder=2)
    if len(strong) > MAX_LEGEND:
        ax.plot([], [], " ", label=f"+{len(strong) - MAX_LEGEND} more series")


def _legend(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, object] = {}
    for h, lab in zip(handles, labels, strict=False):
        seen.setdefault(lab, h)
    if seen:
        ax.legend(
            list(seen.values()),
            list(seen),
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            handlelength=1.6,
        )


def _verdict_mark(ax, status: str) -> None:
    symbol = {"pass": "✓ pass", "fail": "✗ fail", "error": "! error"}.get(status, status)
    ax.text(
        0.995,
        0.97,
        symbol,
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=9,
        fontweight="bold",
        color="white",
        bbox={"boxstyle": "round,pad=0.25", "fc": STATUS_COLOURS.get(status, "#57606a"), "lw": 0},
        zorder=6,
    )


def metric_svg(fig: MetricFigure, origin: float, end: float, ident: str) -> str:
    """Series, windows shaded, the baseline level and the judged value marked pass/fail."""
    figure = _figure(2.5)
    ax = figure.add_subplot()
    _shade(ax, fig.spans, origin)
    _draw_lines(ax, fig.lines, origin)
    if fig.recovery:
        ax.plot(
            [t - origin for t, _ in fig.recovery],
            [v for _, v in fig.recovery],
            ".",
            ms=3,
            color="#57606a",
            label="recovery polls",
            zorder=4,
        )
    if fig.baseline is not None:
        ax.axhline(
            fig.baseline, color="#0550ae", ls="--", lw=1, label=f"baseline {fig.baseline:.4g}"
        )
    if fig.judged is not None:
        t, v = fig.judged
        ax.plot(
            [t - origin],
            [v],
            marker="D",
            ms=7,
            color=STATUS_COLOURS.get(fig.status, "#57606a"),
            ls="none",
            label=f"judged {v:.4g} ({fig.status})",
            zorder=5,
        )
    if not fig.lines and fig.judged is None:
        ax.text(
            0.5, 0.5, fig.error or "no data in the evidence", ha="center", transform=ax.transAxes
        )
    _verdict_mark(ax, fig.status)
    ax.set_xlim(0, max(1.0, end - origin))
    ax.locator_params(nbins=5)
    ax.set_xlabel("seconds since the baseline began")
    title = fig.query if len(fig.query) <= TITLE_CHARS else fig.query[: TITLE_CHARS - 1] + "…"
    ax.set_title(title, loc="left")
    ax.grid(alpha=0.3, lw=0.5)
    _legend(ax)
    return to_svg(figure, ident, f"metric plot: {fig.title} ({fig.status})", "metric")


MARKER_NAMES = {
    "fault": "fault applied",
    "healed": "fault healed",
    "objective": "detection objective",
    "notify_objective": "notification objective",
    "floor": "rule floor",
    "resolve_objective": "resolve objective",
    "notification_firing": "firing notification",
    "notification_resolved": "resolved notification",
    "alertmanager": "held by Alertmanager",
}


def alerts_svg(
    strips: list[AlertStrip], origin: float, end: float, fault: Span | None, ident: str
) -> str:
    """One strip per alert: inactive / pending / firing / resolved, the contract objective and
    the rule's floor, and the Alertmanager and notification receipts."""
    figure = _figure(0.62 * len(strips) + 1.0, left=2.6, right=1.55)
    ax = figure.add_subplot()
    if fault is not None:
        ax.axvspan(fault.start - origin, fault.end - origin, color=SPAN_COLOURS["fault"], zorder=0)
    used: dict[str, Any] = {}
    names = []
    for y, strip in enumerate(reversed(strips)):
        names.append(f"{strip.alert}\n{strip.role} · {strip.status}")
        ax.broken_barh([(0, end - origin)], (y - 0.3, 0.6), color="#eaeef2", zorder=1)
        for state in ("pending", "resolved", "firing"):
            bars = [(s.start - origin, s.end - s.start) for s in strip.segments if s.state == state]
            if bars:
                ax.broken_barh(bars, (y - 0.3, 0.6), color=STATE_COLOURS[state], zorder=2)
                used[state] = Patch(color=STATE_COLOURS[state], label=state)
        for m in strip.markers:
            x = m.at - origin
            if m.kind in MARKER_STYLES:
                colour, style = MARKER_STYLES[m.kind]
                ax.vlines(x, y - 0.42, y + 0.42, colors=colour, linestyles=style, lw=1.3, zorder=4)
                used[m.kind] = Line2D([], [], color=colour, ls=style, label=MARKER_NAMES[m.kind])
            elif m.kind in RECEIPTS:
                shape, colour = RECEIPTS[m.kind]
                y_at = y + 0.42 if m.kind != "alertmanager" else y - 0.42
                ax.plot([x], [y_at], shape, color=colour, ms=5, zorder=5)
                used[m.kind] = Line2D(
                    [], [], marker=shape, color=colour, ls="none", label=MARKER_NAMES[m.kind]
                )
    ax.set_yticks(range(len(strips)), names)
    for tick, strip in zip(ax.get_yticklabels(), reversed(strips), strict=False):
        tick.set_color(STATUS_COLOURS.get(strip.status, "#24292f"))
    ax.set_ylim(-0.7, len(strips) - 0.3)
    ax.set_xlim(0, max(1.0, end - origin))
    ax.locator_params(axis="x", nbins=6)
    ax.set_xlabel("seconds since the baseline began")
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", alpha=0.3, lw=0.5)
    order = ["pending", "firing", "resolved", *MARKER_NAMES]
    handles = [used[k] for k in order if k in used]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return to_svg(figure, ident, f"alert states of {len(strips)} alert(s)", "alerts")


def panel_svg(fig: PanelFigure, origin: float, end: float, ident: str) -> str:
    """Small multiples, one per query of the panel, with its baseline and fault levels."""
    count = max(1, len(fig.queries))
    cols = min(3, count)
    rows = -(-count // cols)
    figure = _figure(1.9 * rows + 0.55, left=0.5, right=0.2, top=0.55)
    axes = figure.subplots(rows, cols, squeeze=False)
    spans_ = {s.kind: s for s in fig.spans}
    for index, ax in enumerate(axes.flat):
        if index >= len(fig.queries):
            ax.set_axis_off()
            continue
        q = fig.queries[index]
        _shade(ax, fig.spans, origin, legend=False)
        _draw_lines(ax, q.lines, origin)
        for kind, level in (("baseline", q.baseline), ("fault", q.fault)):
            span = spans_.get(kind)
            if span is not None and level is not None:
                ax.hlines(
                    level,
                    span.start - origin,
                    span.end - origin,
                    colors="#0550ae" if kind == "baseline" else "#cf222e",
                    linestyles="--",
                    lw=1.1,
                    zorder=4,
                )
        ax.set_title(f"{q.ref}: {q.said}", loc="left", fontsize=8.5)
        ax.set_xlim(0, max(1.0, end - origin))
        ax.locator_params(nbins=4)
        ax.grid(alpha=0.3, lw=0.5)
        if q.lines and len(q.lines) <= 4:
            ax.legend(fontsize=6.5, frameon=False, loc="upper left")
        if index == 0:
            _verdict_mark(ax, fig.status)
    figure.supxlabel("seconds since the baseline began", fontsize=8)
    figure.suptitle(fig.title.removeprefix("panel "), x=0.01, ha="left", fontsize=9)
    return to_svg(figure, ident, f"panel {fig.title} ({fig.status})", "panel")


def timeline_svg(fig: TimelineFigure, origin: float, ident: str) -> str:
    """Phases on one row, each fault from applied to proven healed on a row of its own."""
    rows = 1 + len(fig.faults)
    figure = _figure(0.45 * rows + 0.75, left=1.3, right=0.2)
    ax = figure.add_subplot()
    y = rows - 1
    for name, start, stop, status in fig.phases:
        ax.broken_barh(
            [(start - origin, max(0.05, stop - start))],
            (y - 0.35, 0.7),
            color=PHASE_COLOURS.get(name, "#d0d7de"),
            label=name,
        )
        if stop - start > 0.06 * max(1.0, fig.end - origin):
            ax.text((start + stop) / 2 - origin, y, name, ha="center", va="center", fontsize=7.5)
        if status not in ("ok", "skipped"):
            ax.text(start - origin, y + 0.4, status, color="#cf222e", fontsize=7.5)
    labels = ["phases"]
    for i, (label, applied, healed, proven) in enumerate(fig.faults):
        y = rows - 2 - i
        stop = healed if healed is not None else fig.end
        ax.broken_barh(
            [(applied - origin, max(0.05, stop - applied))],
            (y - 0.3, 0.6),
            color="#ff8182" if proven else "#cf222e",
        )
        ax.text(
            stop - origin,
            y,
            " healed ✓" if proven else " NOT proven healed",
            va="center",
            fontsize=7.5,
            color="#1a7f37" if proven else "#cf222e",
        )
        labels.append(label)
    ax.set_yticks(range(rows - 1, -1, -1), labels)
    ax.set_xlim(0, max(1.0, fig.end - origin) * 1.08)
    ax.set_xlabel("seconds since the baseline began")
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", alpha=0.3, lw=0.5)
    return to_svg(figure, ident, "fault timeline", "timeline")


def scenario_svgs(figures: ScenarioFigures, ident: str) -> dict[str, list[str] | str | None]:
    """Every SVG of one scenario: timeline, metrics, the alert strips, panels."""
    with matplotlib.rc_context(RC):
        fault = next((s for s in figures.spans if s.kind == "fault"), None)
        return {
            "timeline": timeline_svg(figures.timeline, figures.origin, f"{ident}-t"),
            "metrics": [
                metric_svg(m, figures.origin, figures.end, f"{ident}-m{i}")
                for i, m in enumerate(figures.metrics)
            ],
            "alerts": alerts_svg(figures.alerts, figures.origin, figures.end, fault, f"{ident}-a")
            if figures.alerts
            else None,
            "panels": [
                panel_svg(p, figures.origin, figures.end, f"{ident}-p{i}")
                for i, p in enumerate(figures.panels)
            ],
        }
