"""What the plots show, chosen from the evidence: series, windows, states, objectives."""

from __future__ import annotations

from harness.checks.metrics import MetricEvidence
from harness.report.figures import alert_strip, fault_window, metric_figure, scenario_figures
from harness.report.plots import scenario_svgs
from harness.report.runs import load_run
from tests.report.conftest import T0, check, scenario


def test_metric_figure_from_range_series_emphasises_the_judged_labels(a2) -> None:
    result = load_run(a2).record.scenarios[0]
    labelled = next(
        c
        for c in result.checks
        if isinstance(c.evidence, MetricEvidence)
        and c.evidence.expected is not None
        and c.evidence.expected.labels
    )
    evidence: MetricEvidence = labelled.evidence  # type: ignore[assignment]
    fig = metric_figure(labelled, result)
    assert fig.source.startswith("range series over the scenario, step 1s")
    assert evidence.series is not None and evidence.fault_window is not None
    assert len(fig.lines) == len(evidence.series.series)
    strong = [line for line in fig.lines if line.emphasis]
    assert [line.label for line in strong] == ["reason=timeout"]
    assert fig.baseline == evidence.baseline
    assert fig.judged == (evidence.fault_window[1], evidence.value)
    assert [s.kind for s in fig.spans] == ["baseline", "fault"]


def test_metric_figure_without_range_series_uses_the_checks_own_queries(b1) -> None:
    result = load_run(b1).record.scenarios[0]
    metric = next(c for c in result.checks if c.kind == "metric")
    fig = metric_figure(metric, result)
    assert fig.source == "no range series in this evidence: the check's own query results"
    assert fig.lines, "the instant values the check evaluated"


def test_alert_strip_states_objective_floor_and_receipts() -> None:
    evidence = {
        "alert": "A",
        "loaded_rule": {"group_interval_s": 1.0},
        "alerts_series": [
            {"labels": {}, "pending": [T0 + 12, T0 + 13], "firing": [T0 + 14, T0 + 15, T0 + 20]}
        ],
        "fault_start": T0 + 10,
        "healed_at": T0 + 40,
        "objective_s": 21.0,
        "notify_objective_s": 25.0,
        "floor_s": 12.0,
        "resolve_objective_s": 28.0,
        "resolved_at": T0 + 45,
        "alertmanager": [{"at": T0 + 15, "state": "active"}],
        "notifications": [{"received_at": T0 + 16, "status": "firing", "receiver": "r"}],
    }
    strip = alert_strip(check("alert", "pass", **evidence), scenario("S1", []))
    assert [(s.state, s.start - T0, s.end - T0) for s in strip.segments] == [
        ("pending", 12, 14),
        ("firing", 14, 16),
        ("firing", 20, 21),
        ("resolved", 45, 60),
    ]
    marks = {m.kind: m.at - T0 for m in strip.markers}
    assert marks == {
        "fault": 10,
        "objective": 31,
        "notify_objective": 35,
        "floor": 22,
        "healed": 40,
        "resolve_objective": 68,
        "alertmanager": 15,
        "notification_firing": 16,
    }
    forbidden = alert_strip(
        check("alert_forbidden", alert="B", alerts_series=[]), scenario("S1", [])
    )
    assert (forbidden.role, forbidden.segments, forbidden.markers) == ("forbidden", [], [])


def test_an_unhealed_fault_window_ends_with_the_scenario() -> None:
    assert fault_window(scenario("S1", [], healed=True)) == (T0 + 10, T0 + 40)
    assert fault_window(scenario("S1", [], healed=False)) == (T0 + 10, T0 + 60)


def test_svgs_are_inline_marked_and_unique(b1) -> None:
    result = load_run(b1).record.scenarios[0]
    figures = scenario_figures(result)
    svgs = scenario_svgs(figures, "scenario-S2")
    assert len(svgs["metrics"]) == 3 and len(svgs["panels"]) == 3 and svgs["alerts"]
    for svg in [svgs["timeline"], svgs["alerts"], *svgs["metrics"], *svgs["panels"]]:
        assert svg.startswith('<svg class="plot plot-')
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<metadata>" not in svg
        assert 'href="http' not in svg
    again = scenario_svgs(figures, "scenario-S2")
    assert again == svgs, "deterministic for a given id"
    assert scenario_svgs(figures, "scenario-other")["timeline"] != svgs["timeline"]
