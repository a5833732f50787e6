"""The panel, delivery, boundary and verdict judges on synthetic data, with the fooling cases:
a panel that passes on pre-initialised zeros or on one good query of several, a poison
message dead-lettered before max_deliver, a "just below" run that injected nothing."""

from __future__ import annotations

from typing import Any

from harness.checks.boundary import BoundaryEvidence, judge_boundary
from harness.checks.dashboards import (
    PanelEvidence,
    PanelExpectation,
    PanelQuery,
    as_run,
    judge_panel,
)
from harness.checks.delivery import DeliveryEvidence, DeliveryExpectation, judge_delivery
from harness.checks.metrics import SeriesRecord
from harness.config import PROFILES, Profile
from harness.contract import Threshold
from harness.evidence.record import CheckResult, FaultRecord, HealOutcome
from harness.verdict import decide
from harness.workload.ledger import LedgerSummary

BASE, FAULT = (0.0, 9.5), (10.0, 40.0)
PANEL = PanelExpectation(dashboard="d", panel="p")


def query(
    ref: str, base: float, fault: float, legend: str = "{{reason}}", **labels: str
) -> PanelQuery:
    points = [(float(t), base) for t in range(0, 10)] + [(float(t), fault) for t in range(10, 41)]
    series = SeriesRecord(labels={"reason": "timeout", **labels}, points=points)
    return PanelQuery(refId=ref, query="x", legend=legend, result=[series])


def panel(
    spec: PanelExpectation, missing: str | None, queries: list[PanelQuery] | None = None
) -> PanelEvidence:
    return PanelEvidence(
        expected=spec,
        missing=missing,
        baseline_window=BASE,
        fault_window=FAULT,
        queries=queries or [],
    )


def test_panel_shows_the_symptom() -> None:
    status, summary, judged = judge_panel(panel(PANEL, None, [query("A", 0.0, 2.0)]))
    assert status == "pass", summary
    assert judged.queries[0].baseline == 0.0 and judged.queries[0].fault == 2.0
    assert judged.queries[0].moved is True and judged.queries[0].series == 1


def test_pre_initialised_zeros_do_not_pass() -> None:
    status, summary, _ = judge_panel(panel(PANEL, None, [query("A", 0.0, 0.0)]))
    assert status == "fail" and "the symptom is not shown" in summary


def test_a_broken_second_query_is_seen() -> None:
    broken = PanelQuery(refId="B", query="y", legend="x")
    status, summary, _ = judge_panel(panel(PANEL, None, [query("A", 0.0, 2.0), broken]))
    assert status == "fail" and "query B returned no data" in summary


def test_legend_labels_must_be_on_the_series() -> None:
    q = query("A", 0.0, 2.0, legend="{{reason}} {{subject}}")
    status, summary, _ = judge_panel(panel(PANEL, None, [q]))
    assert status == "fail" and "lack legend label(s) subject" in summary


def test_per_query_direction_and_missing_panel() -> None:
    spec = PanelExpectation(dashboard="d", panel="p", queries={"B": "up"})
    status, summary, _ = judge_panel(
        panel(spec, None, [query("A", 0.0, 2.0), query("B", 5.0, 5.0)])
    )
    assert status == "fail" and "query B did not move up" in summary
    assert judge_panel(panel(PANEL, "dashboard 'd' has no panel 'p'"))[0] == "fail"


def line(ref: str, expr: str, points: list[tuple[float, float]]) -> PanelQuery:
    """A query whose one unlabelled series has these points."""
    return PanelQuery(refId=ref, query=expr, legend="x", result=[SeriesRecord(points=points)])


def ratio(ref: str) -> PanelQuery:
    """A ratio whose denominator is idle in the scenario: 0/0, so NaN everywhere."""
    nan = float("nan")
    return line(ref, "a/b", [(0.0, nan), (20.0, nan)])


def test_stated_queries_are_the_symptom_each_judged_on_its_own() -> None:
    """Per refId: up, flat (with data) and any (not judged: an idle ratio has no data)."""
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "up", "B": "flat", "C": "any"})
    obs = panel(spec, None, [query("A", 0.0, 2.0), query("B", 1.0, 1.0), ratio("C")])
    status, summary, judged = judge_panel(obs)
    assert status == "pass", summary
    assert [(r.expected, r.moved, r.flat) for r in judged.queries] == [
        ("up", True, False),
        ("flat", False, True),
        ("any", None, None),
    ]


def test_a_query_stated_flat_that_moves_or_has_no_data_fails() -> None:
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "up", "B": "flat"})
    moving = judge_panel(panel(spec, None, [query("A", 0.0, 2.0), query("B", 0.0, 3.0)]))
    assert moving[0] == "fail" and "query B did not stay flat" in moving[1]
    empty = PanelQuery(refId="B", query="y", legend="x")
    assert (
        "query B returned no data"
        in judge_panel(panel(spec, None, [query("A", 0.0, 2.0), empty]))[1]
    )


def test_a_wrong_query_in_a_multi_query_panel_fails_its_own_statement() -> None:
    """The SRE's breakage: the `ack` ratio pointed at the NAK metrics no longer moves in S1."""
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "flat", "C": "up"})
    obs = panel(spec, None, [query("A", 0.0, 0.0), query("C", 0.0, 0.0)])
    status, summary, judged = judge_panel(obs)
    assert status == "fail" and "query C did not move up" in summary
    assert not any(r.moved for r in judged.queries)


def test_per_query_down_is_judged_on_the_low_point() -> None:
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "down"})
    status, summary, _ = judge_panel(panel(spec, None, [query("A", 1.0, 0.0)]))
    assert status == "pass", summary


def test_unstated_query_beside_stated_ones_needs_data_but_is_not_counted_as_moved() -> None:
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "up"})
    status, _, judged = judge_panel(panel(spec, None, [query("A", 0.0, 2.0), query("B", 0.0, 2.0)]))
    assert status == "pass" and judged.queries[1].moved is None


LEDGER = {
    "acked": 600, "answered": 480, "dead_lettered": 120, "lost": 0, "duplicate_outcomes": 0,
    "max_duplicates_per_message": 0, "unexpected": 0, "poison_published": 120,
    "poison_dead_lettered": 120, "exhausted_valid": [],
    "dead_lettered_messages": [
        {"request_id": f"p{i}", "deliveries": 5, "source": "server's terminated advisory"}
        for i in range(120)
    ],
}  # fmt: skip
SERVER = {"max_deliver": 5, "stream": "router-stream"}


def observed(ledger: dict[str, Any], server: dict[str, Any] = SERVER) -> DeliveryEvidence:
    """The ledger's summary as the delivery check collects it (poison expected)."""
    summary = LedgerSummary.model_validate({**ledger, "server": server})
    return DeliveryEvidence(poison_expected=True, ledger=summary)


def test_delivery_passes_on_an_honest_ledger() -> None:
    status, summary = judge_delivery(DeliveryExpectation(), observed(LEDGER))
    assert status == "pass", summary


def test_dead_lettered_before_max_deliver_fails_whatever_the_router_says() -> None:
    early = dict(LEDGER)
    early["dead_lettered_messages"] = [
        {"request_id": "p1", "deliveries": 2, "source": "server's terminated advisory"}
    ] + LEDGER["dead_lettered_messages"][1:]
    status, summary = judge_delivery(DeliveryExpectation(), observed(early))
    assert (
        status == "fail" and "before max_deliver 5" in summary and "after 2 deliveries" in summary
    )


def test_delivery_counts_nobody_vouches_for_fail() -> None:
    unknown = dict(LEDGER)
    unknown["dead_lettered_messages"] = [
        {"request_id": "p1", "deliveries": None, "source": "nothing"}
    ]
    status, summary = judge_delivery(DeliveryExpectation(), observed(unknown))
    assert status == "fail" and "no evidence of their delivery count" in summary


def test_valid_message_exhausting_max_deliver_and_lost_messages_fail() -> None:
    bad = {**LEDGER, "exhausted_valid": ["v9"], "lost": 2}
    status, summary = judge_delivery(DeliveryExpectation(), observed(bad))
    assert status == "fail" and "2 lost" in summary and "valid message(s) exhausted" in summary


def test_exhausted_valid_messages_fail_beyond_the_scenarios_allowance() -> None:
    # JS-001's random drops exhaust max_deliver for one message now and then: it allows one
    one = {**LEDGER, "exhausted_valid": ["v9"], "lost": 1}
    allows_one = DeliveryExpectation(lost=1, exhausted_valid=1)
    status, summary = judge_delivery(allows_one, observed(one))
    assert status == "pass", summary
    assert judge_delivery(DeliveryExpectation(lost=1), observed(one))[0] == "fail"
    two = {**LEDGER, "exhausted_valid": ["v8", "v9"], "lost": 1}
    status, summary = judge_delivery(allows_one, observed(two))
    assert status == "fail"
    assert "2 valid message(s) exhausted max_deliver (server advisory, allowed 1)" in summary


def test_dead_lettered_valid_messages_fail_unless_the_scenario_allows_them() -> None:
    shed = {**LEDGER, "valid_dead_lettered": ["v1", "v2"], "exhausted_valid": ["v1", "v2"]}
    status, summary = judge_delivery(DeliveryExpectation(), observed(shed))
    assert status == "fail" and "2 valid message(s) dead-lettered" in summary
    allowed = DeliveryExpectation(valid_dead_lettered=True)
    assert judge_delivery(allowed, observed(shed))[0] == "pass"


def test_missing_usage_events_fail_beyond_the_allowance() -> None:
    missing = {**LEDGER, "usage_missing": 6, "usage_missing_ids": ["h1"]}
    spec = DeliveryExpectation(usage_events=True, usage_missing=5)
    status, summary = judge_delivery(spec, observed(missing))
    assert status == "fail" and "6 decision(s) never got their usage event" in summary
    within = {**missing, "usage_missing": 5}
    assert judge_delivery(spec, observed(within))[0] == "pass"


def test_duplicates_beyond_the_bound_fail_and_no_workload_is_an_error() -> None:
    dup = {**LEDGER, "max_duplicates_per_message": 3}
    spec = DeliveryExpectation(max_duplicates_per_message=2)
    assert judge_delivery(spec, observed(dup))[0] == "fail"
    assert judge_delivery(spec, DeliveryEvidence(poison_expected=True))[0] == "error"
    assert judge_delivery(spec, observed(LEDGER, {}))[0] == "fail"


THRESHOLD = Threshold(text="ack failure ratio > 1 %", signal="s", op=">", value=0.01)


def boundary(side: str, value: float | None) -> BoundaryEvidence:
    return BoundaryEvidence(
        alert="A", side=side, threshold=THRESHOLD, window=FAULT, query="q", value=value
    )


def test_boundary_must_land_on_its_side() -> None:
    assert judge_boundary(boundary("above", 0.03))[0] == "pass"
    assert judge_boundary(boundary("below", 0.004))[0] == "pass"
    assert judge_boundary(boundary("below", 0.02))[0] == "error"
    assert judge_boundary(boundary("above", 0.005))[0] == "error"
    assert judge_boundary(boundary("below", None))[0] == "error"  # nothing measured
    assert judge_boundary(BoundaryEvidence(alert="A", side="below"))[0] == "error"


def check(status: str) -> CheckResult:
    return CheckResult(name=f"c-{status}", kind="metric", status=status, summary=status)  # type: ignore[arg-type]


def fault(healed: bool | None, applied: bool = True) -> FaultRecord:
    heal = (
        None
        if healed is None
        else HealOutcome(
            key="k",
            kind="toxic",
            healed=healed,
            method="remove" if healed else "failed",
            seconds=0.1,
        )
    )
    return FaultRecord(
        key="k", kind="toxic", spec={}, planned_start_s=0, planned_duration_s=1,
        applied_at=1.0 if applied else None, heal=heal,
    )  # fmt: skip


def test_verdict() -> None:
    assert decide(checks=[check("pass")], faults=[fault(True)]) == ("passed", "")
    assert decide(checks=[check("pass"), check("fail")], faults=[fault(True)])[0] == "failed"
    assert decide(checks=[check("fail"), check("error")], faults=[fault(True)])[0] == "error"
    assert decide(checks=[], faults=[fault(True)]) == (
        "error",
        "the scenario declares nothing to check",
    )
    verdict, reason = decide(checks=[check("pass")], faults=[fault(False)])
    assert verdict == "error" and "not proven healed" in reason


def test_verdict_names_the_first_cause_first() -> None:
    """Fooled before: a fault refused at inject was blamed as "not proven healed"."""
    verdict, reason = decide(
        checks=[check("pass")],
        faults=[fault(True, applied=False)],
        phase_error="preflight: the target cannot take this scenario's faults: no fault hook",
    )
    assert verdict == "error" and reason.startswith("preflight: the target cannot")
    assert "not proven healed" not in reason
    assert decide(checks=[], faults=[], interrupted=True)[0] == "interrupted"


def test_a_line_that_appears_moved_up_but_an_empty_one_did_not() -> None:
    """A ratio with an idle denominator in the baseline (no data) that shows failures in the
    fault moved up, as on screen; one that stays empty did not."""
    nan = float("nan")
    points = [(float(t), nan) for t in range(0, 10)] + [(float(t), 0.5) for t in range(10, 41)]
    appears = line("E", "a/b", points)
    spec = PanelExpectation(dashboard="d", panel="p", queries={"E": "up"})
    assert judge_panel(panel(spec, None, [appears]))[0] == "pass"
    assert judge_panel(panel(spec, None, [ratio("E")]))[0] == "fail"


def test_down_is_judged_against_the_baseline_median_not_its_ramp() -> None:
    """A rate over a window ramps up from 0 as the baseline's workload starts: the baseline's
    lowest point is that ramp, so a fall to zero in the fault is judged against the median."""
    points = [(0.0, 0.0), (1.0, 20.0)] + [(float(t), 50.0) for t in range(2, 10)]
    points += [(float(t), 0.0) for t in range(10, 41)]
    falls = line("A", "x", points)
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "down"})
    status, summary, judged = judge_panel(panel(spec, None, [falls]))
    assert status == "pass", summary
    assert judged.queries[0].baseline == 50.0 and judged.queries[0].fault == 0.0


def test_a_query_stated_flat_counts_for_coverage_and_round_trips_typed() -> None:
    """A passing panel's query that stayed flat as stated shows its families work (coverage),
    and the judged row keeps `expected`/`flat` typed through the JSON; a row judged without a
    statement serialises as older evidence did, without them."""
    from harness.checks.dashboards import PanelCheck
    from harness.evidence.record import CheckResult

    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "up", "B": "flat"})
    a, b = line("A", "rate(a_total[1m])", [(0.0, 0.0), (20.0, 2.0)]), query("B", 1.0, 1.0)
    b = b.model_copy(update={"query": "rate(b_total[1m])"})
    status, summary, judged = judge_panel(panel(spec, None, [a, b]))
    assert status == "pass", summary
    check = CheckResult(
        name="panel d / p",
        kind="dashboard",
        status=status,
        summary=summary,
        evidence=judged.model_dump(mode="json"),
    )
    assert check.evidence.queries[1].flat is True  # type: ignore[attr-defined]
    facts = PanelCheck.facts(check)
    assert facts.queries_moved == ["rate(a_total[1m])", "rate(b_total[1m])"]
    assert facts.panels_shown == {"d / p"}
    unstated = judge_panel(panel(PANEL, None, [query("A", 0.0, 2.0)]))[2]
    assert {"expected", "flat"}.isdisjoint(unstated.model_dump(mode="json")["queries"][0])


def test_each_query_plot_says_what_was_judged() -> None:
    """The panel figure's per-query titles: a statement and whether it held, not "did not
    move" for a query that stayed flat as it must."""
    from harness.report.figures import query_said

    spec = PanelExpectation(
        dashboard="d", panel="p", queries={"A": "up", "B": "flat", "C": "any", "E": "up"}
    )
    queries = [query("A", 0.0, 2.0), query("B", 1.0, 1.0), ratio("C"), query("D", 0.0, 1.0)]
    judged = judge_panel(panel(spec, None, [*queries, ratio("E")]))[2]
    assert [query_said(q) for q in judged.queries] == [
        "up: moved",
        "flat: stayed flat",
        "any: not judged here",
        "shown, not judged",
        "no data",
    ]
    whole = judge_panel(panel(PANEL, None, [query("A", 0.0, 0.0)]))[2]
    assert query_said(whole.queries[0]) == "did not move"


def history(fault: float, wobble: float = 0.0) -> PanelQuery:
    """A 24 h rate whose baseline already counts earlier scenarios' events (1.0/s-ish),
    wobbling by `wobble` as rate's extrapolation does."""
    base_points = [(float(t), 1.0 - wobble * (t % 2)) for t in range(0, 10)]
    fault_points = [(float(t), fault) for t in range(10, 41)]
    expr = "topk(10, sum by (a) (rate(x_total[24h])))"
    return line("A", expr, base_points + fault_points)


def test_a_long_window_panel_is_judged_on_the_faults_own_events() -> None:
    # the slot's history makes the baseline large: a 5 % rise is the fault's whole contribution
    status, summary, judged = judge_panel(panel(PANEL, None, [history(1.05)]))
    assert status == "pass", summary
    assert judged.queries[0].moved is True
    # the same rise on a window within the scenario is within the relative margin: not shown
    short = line("A", "sum(rate(x_total[10s]))", history(1.05).result[0].points)
    assert judge_panel(panel(PANEL, None, [short]))[0] == "fail"
    # a window just longer than the scenario (0 s to 40 s) reaches into the slot's history
    reaching = line("A", "sum(rate(x_total[41s]))", history(1.05).result[0].points)
    assert judge_panel(panel(PANEL, None, [reaching]))[0] == "pass"


def test_panel_queries_run_on_the_profiles_clock() -> None:
    local, staging = Profile(), PROFILES["staging"]
    written = "sum(rate(a_total[5m])) / sum(rate(b_total[$__rate_interval]))"
    # 5m ÷ 30 = 10 s, as the rules have it; Grafana's rate interval is four local scrapes
    assert as_run(written, local, window=30) == ("sum(rate(a_total[10s])) / sum(rate(b_total[4s]))")
    assert as_run("rate(a_total[24h])", local, window=30) == "rate(a_total[48m])"
    # the floor keeps a rate's window over two scrapes; $__range is the local fault window
    assert as_run("rate(a[1m]) * $__range", local, window=30) == "rate(a[4s]) * 30s"
    assert as_run(written, staging, window=900) == (
        "sum(rate(a_total[5m])) / sum(rate(b_total[1m]))"
    )


def test_a_long_window_panel_that_only_wobbles_does_not_pass() -> None:
    status, summary, _ = judge_panel(panel(PANEL, None, [history(1.01, wobble=0.01)]))
    assert status == "fail" and "the symptom is not shown" in summary
    status, summary, _ = judge_panel(panel(PANEL, None, [history(1.0)]))
    assert status == "fail", summary


def binds(spike_at: float) -> PanelQuery:
    """Successful consumer binds over a 4 s window: none in the scenario but one spike."""
    points = [(float(t), 0.33 if t == spike_at else 0.0) for t in range(0, 41)]
    return line("B", "sum(rate(router_nats_subscribe_total[4s]))", points)


def test_a_baseline_is_judged_once_its_windows_hold_the_scenario_only() -> None:
    flat = PanelExpectation(dashboard="d", panel="p", queries={"B": "flat"})
    # a bind 1 s into the baseline sits in a window reaching back before it: the previous
    # scenario's, not this one's steady state
    status, summary, judged = judge_panel(panel(flat, None, [binds(spike_at=1.0)]))
    assert status == "pass", summary
    assert judged.queries[0].baseline == 0.0
    # a bind 5 s in is the scenario's own baseline: the fault's 0 is no longer flat against it
    status, summary, _ = judge_panel(panel(flat, None, [binds(spike_at=5.0)]))
    assert status == "fail" and "query B did not stay flat" in summary
    # and a spike in the fault window is never skipped
    status, summary, _ = judge_panel(panel(flat, None, [binds(spike_at=20.0)]))
    assert status == "fail" and "query B did not stay flat" in summary
