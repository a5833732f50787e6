"""The panel, delivery, boundary and verdict judges on synthetic data, with the fooling cases:
a panel that passes on pre-initialised zeros or on one good query of several, a poison
message dead-lettered before max_deliver, a "just below" run that injected nothing."""

from __future__ import annotations

from harness.checks.base import Window
from harness.checks.boundary import BoundaryObservation, judge_boundary
from harness.checks.dashboards import (
    PanelExpectation,
    PanelObservation,
    QueryObservation,
    judge_panel,
)
from harness.checks.delivery import DeliveryExpectation, DeliveryObservation, judge_delivery
from harness.contract import Threshold
from harness.evidence.record import CheckResult, FaultRecord, HealOutcome
from harness.prometheus import Series
from harness.verdict import decide

BASE, FAULT = Window(0, 9.5), Window(10, 40)
PANEL = PanelExpectation(dashboard="d", panel="p")


def query(
    ref: str, base: float, fault: float, legend: str = "{{reason}}", **labels: str
) -> QueryObservation:
    points = [(float(t), base) for t in range(0, 10)] + [(float(t), fault) for t in range(10, 41)]
    return QueryObservation(
        ref, "x", legend, [Series({"reason": "timeout", **labels}, points)], BASE, FAULT
    )


def test_panel_shows_the_symptom() -> None:
    status, summary, rows = judge_panel(PanelObservation(PANEL, None, [query("A", 0.0, 2.0)]))
    assert status == "pass", summary
    assert rows[0]["baseline"] == 0.0 and rows[0]["fault"] == 2.0


def test_pre_initialised_zeros_do_not_pass() -> None:
    status, summary, _ = judge_panel(PanelObservation(PANEL, None, [query("A", 0.0, 0.0)]))
    assert status == "fail" and "the symptom is not shown" in summary


def test_a_broken_second_query_is_seen() -> None:
    broken = QueryObservation("B", "y", "x", [], BASE, FAULT)
    status, summary, _ = judge_panel(PanelObservation(PANEL, None, [query("A", 0.0, 2.0), broken]))
    assert status == "fail" and "query B returned no data" in summary


def test_legend_labels_must_be_on_the_series() -> None:
    q = query("A", 0.0, 2.0, legend="{{reason}} {{subject}}")
    status, summary, _ = judge_panel(PanelObservation(PANEL, None, [q]))
    assert status == "fail" and "lack legend label(s) subject" in summary


def test_per_query_direction_and_missing_panel() -> None:
    spec = PanelExpectation(dashboard="d", panel="p", queries={"B": "up"})
    status, summary, _ = judge_panel(
        PanelObservation(spec, None, [query("A", 0.0, 2.0), query("B", 5.0, 5.0)])
    )
    assert status == "fail" and "query B did not move up" in summary
    assert judge_panel(PanelObservation(PANEL, "dashboard 'd' has no panel 'p'"))[0] == "fail"


def ratio(ref: str) -> QueryObservation:
    """A ratio whose denominator is idle in the scenario: 0/0, so NaN everywhere."""
    nan = float("nan")
    return QueryObservation(ref, "a/b", "x", [Series({}, [(0.0, nan), (20.0, nan)])], BASE, FAULT)


def test_stated_queries_are_the_symptom_each_judged_on_its_own() -> None:
    """Per refId: up, flat (with data) and any (not judged: an idle ratio has no data)."""
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "up", "B": "flat", "C": "any"})
    obs = PanelObservation(spec, None, [query("A", 0.0, 2.0), query("B", 1.0, 1.0), ratio("C")])
    status, summary, rows = judge_panel(obs)
    assert status == "pass", summary
    assert [(r["expected"], r.get("moved"), r.get("flat")) for r in rows] == [
        ("up", True, False),
        ("flat", False, True),
        ("any", None, None),
    ]


def test_a_query_stated_flat_that_moves_or_has_no_data_fails() -> None:
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "up", "B": "flat"})
    moving = judge_panel(PanelObservation(spec, None, [query("A", 0.0, 2.0), query("B", 0.0, 3.0)]))
    assert moving[0] == "fail" and "query B did not stay flat" in moving[1]
    empty = QueryObservation("B", "y", "x", [], BASE, FAULT)
    assert (
        "query B returned no data"
        in judge_panel(PanelObservation(spec, None, [query("A", 0.0, 2.0), empty]))[1]
    )


def test_a_wrong_query_in_a_multi_query_panel_fails_its_own_statement() -> None:
    """The SRE's breakage: the `ack` ratio pointed at the NAK metrics no longer moves in S1."""
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "flat", "C": "up"})
    obs = PanelObservation(spec, None, [query("A", 0.0, 0.0), query("C", 0.0, 0.0)])
    status, summary, rows = judge_panel(obs)
    assert status == "fail" and "query C did not move up" in summary
    assert not any(r.get("moved") for r in rows)


def test_per_query_down_is_judged_on_the_low_point() -> None:
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "down"})
    status, summary, _ = judge_panel(PanelObservation(spec, None, [query("A", 1.0, 0.0)]))
    assert status == "pass", summary


def test_unstated_query_beside_stated_ones_needs_data_but_is_not_counted_as_moved() -> None:
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "up"})
    status, _, rows = judge_panel(
        PanelObservation(spec, None, [query("A", 0.0, 2.0), query("B", 0.0, 2.0)])
    )
    assert status == "pass" and "moved" not in rows[1]


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


def test_delivery_passes_on_an_honest_ledger() -> None:
    status, summary = judge_delivery(
        DeliveryExpectation(), DeliveryObservation(LEDGER, True, SERVER)
    )
    assert status == "pass", summary


def test_dead_lettered_before_max_deliver_fails_whatever_the_router_says() -> None:
    early = dict(LEDGER)
    early["dead_lettered_messages"] = [
        {"request_id": "p1", "deliveries": 2, "source": "server's terminated advisory"}
    ] + LEDGER["dead_lettered_messages"][1:]
    status, summary = judge_delivery(
        DeliveryExpectation(), DeliveryObservation(early, True, SERVER)
    )
    assert (
        status == "fail" and "before max_deliver 5" in summary and "after 2 deliveries" in summary
    )


def test_delivery_counts_nobody_vouches_for_fail() -> None:
    unknown = dict(LEDGER)
    unknown["dead_lettered_messages"] = [
        {"request_id": "p1", "deliveries": None, "source": "nothing"}
    ]
    status, summary = judge_delivery(
        DeliveryExpectation(), DeliveryObservation(unknown, True, SERVER)
    )
    assert status == "fail" and "no evidence of their delivery count" in summary


def test_valid_message_exhausting_max_deliver_and_lost_messages_fail() -> None:
    bad = {**LEDGER, "exhausted_valid": ["v9"], "lost": 2}
    status, summary = judge_delivery(DeliveryExpectation(), DeliveryObservation(bad, True, SERVER))
    assert status == "fail" and "2 lost" in summary and "valid message(s) exhausted" in summary


def test_dead_lettered_valid_messages_fail_unless_the_scenario_allows_them() -> None:
    shed = {**LEDGER, "valid_dead_lettered": ["v1", "v2"], "exhausted_valid": ["v1", "v2"]}
    status, summary = judge_delivery(DeliveryExpectation(), DeliveryObservation(shed, True, SERVER))
    assert status == "fail" and "2 valid message(s) dead-lettered" in summary
    allowed = DeliveryExpectation(valid_dead_lettered=True)
    assert judge_delivery(allowed, DeliveryObservation(shed, True, SERVER))[0] == "pass"


def test_missing_usage_events_fail_beyond_the_allowance() -> None:
    missing = {**LEDGER, "usage_missing": 6, "usage_missing_ids": ["h1"]}
    spec = DeliveryExpectation(usage_events=True, usage_missing=5)
    status, summary = judge_delivery(spec, DeliveryObservation(missing, True, SERVER))
    assert status == "fail" and "6 decision(s) never got their usage event" in summary
    within = {**missing, "usage_missing": 5}
    assert judge_delivery(spec, DeliveryObservation(within, True, SERVER))[0] == "pass"


def test_duplicates_beyond_the_bound_fail_and_no_workload_is_an_error() -> None:
    dup = {**LEDGER, "max_duplicates_per_message": 3}
    spec = DeliveryExpectation(max_duplicates_per_message=2)
    assert judge_delivery(spec, DeliveryObservation(dup, True, SERVER))[0] == "fail"
    assert judge_delivery(spec, DeliveryObservation(None, True, SERVER))[0] == "error"
    assert judge_delivery(spec, DeliveryObservation(LEDGER, True, {}))[0] == "fail"


THRESHOLD = Threshold(text="ack failure ratio > 1 %", signal="s", op=">", value=0.01)


def boundary(side: str, value: float | None) -> BoundaryObservation:
    return BoundaryObservation("A", side, THRESHOLD, "q", FAULT, value)


def test_boundary_must_land_on_its_side() -> None:
    assert judge_boundary(boundary("above", 0.03))[0] == "pass"
    assert judge_boundary(boundary("below", 0.004))[0] == "pass"
    assert judge_boundary(boundary("below", 0.02))[0] == "error"
    assert judge_boundary(boundary("above", 0.005))[0] == "error"
    assert judge_boundary(boundary("below", None))[0] == "error"  # nothing measured
    assert judge_boundary(BoundaryObservation("A", "below", None))[0] == "error"


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
    appears = QueryObservation("E", "a/b", "x", [Series({}, points)], BASE, FAULT)
    spec = PanelExpectation(dashboard="d", panel="p", queries={"E": "up"})
    assert judge_panel(PanelObservation(spec, None, [appears]))[0] == "pass"
    assert judge_panel(PanelObservation(spec, None, [ratio("E")]))[0] == "fail"


def test_down_is_judged_against_the_baseline_median_not_its_ramp() -> None:
    """A rate over a window ramps up from 0 as the baseline's workload starts: the baseline's
    lowest point is that ramp, so a fall to zero in the fault is judged against the median."""
    points = [(0.0, 0.0), (1.0, 20.0)] + [(float(t), 50.0) for t in range(2, 10)]
    points += [(float(t), 0.0) for t in range(10, 41)]
    falls = QueryObservation("A", "x", "x", [Series({}, points)], BASE, FAULT)
    spec = PanelExpectation(dashboard="d", panel="p", queries={"A": "down"})
    status, summary, rows = judge_panel(PanelObservation(spec, None, [falls]))
    assert status == "pass", summary
    assert rows[0]["baseline"] == 50.0 and rows[0]["fault"] == 0.0
