"""Every check kind fails on a realistic breakage, and everything unbroken passes beside it.

Three stacks are started from deliberately broken files (breakages.py): A breaks rules and
Alertmanager routing, B breaks the router's code and a dashboard, C breaks only dashboard panels
(a wrong refId's query, a wrong metric, a wrong label in `by`). The repo's own scenarios run
against each through the real CLI, judged against the repo's untouched alerting contract, not
against a reference copy of deploy/. Each breakage test asserts the specific check that must
catch it, with its reason; the control tests assert that every other check of the same runs
passed, so each failure is attributable to its breakage. Against the unbroken stack the same
scenarios pass (tests/scenarios/test_catalogue_live.py). What `harness validate` sees of
stack A's files without running anything: test_broken_validate.py.
"""

from __future__ import annotations

import pytest

from tests.broken.breakages import (
    BROKEN_PANEL,
    DEAD_RULE,
    EARLY_DLQ,
    INHIBITED,
    LONG_FOR,
    NO_ACK_FAILURE_COUNT,
    RATIO_REF,
    RESOLVED_OFF,
    SCENARIOS_A,
    SCENARIOS_B,
    SCENARIOS_C,
    SEVERITY,
    STACK_A,
    STACK_B,
    STACK_C,
    WRONG_LABEL,
    Breakage,
)
from tests.broken.runs import BrokenRun

# Checks that fail as a consequence of a breakage, beside the one that catches it directly.
CONSEQUENCES_B = {
    # uncounted ACK failures: the alert has nothing to fire on, and every panel showing them
    # stays flat (the total, the ratio's `ack` query, the correlation)
    ("S1", "alert RouterNatsHighAckFailureRate fires"),
    ("S1", "panel router-jetstream / NATS ACK Failures by Reason"),
    ("S1", "panel router-jetstream / Correlation: NATS Failures vs Redeliveries"),
    ("S1", "panel router-jetstream / Total NATS Failures"),
    ("S1", "panel router-jetstream / NATS Operation Failure Ratios"),
}
CONSEQUENCES_A: set[tuple[str, str]] = set()  # stack A's breakages each hit their own check


def assert_caught(run: BrokenRun, breakage: Breakage) -> None:
    check = run.check(breakage.scenario, breakage.check)
    why = run.phase_errors().get(breakage.scenario)
    assert check["status"] == "fail", (breakage.what, check["status"], check["summary"], why)
    assert breakage.caught_by in check["summary"], (breakage.what, check["summary"])


# --- stack A: rules and routing -------------------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("breakage", STACK_A, ids=lambda b: b.what.split(":")[0])
def test_stack_a_breakage_is_caught(broken_a: BrokenRun, breakage: Breakage) -> None:
    assert_caught(broken_a, breakage)


@pytest.mark.live
def test_stack_a_only_the_broken_checks_fail(broken_a: BrokenRun) -> None:
    assert broken_a.returncode == 1, broken_a.stderr[-3000:]
    expected = {(b.scenario, b.check) for b in STACK_A} | CONSEQUENCES_A
    # a forbidden check of the dead rule sits in every scenario that forbids it
    expected |= {
        (s, DEAD_RULE.check)
        for s in SCENARIOS_A
        if any(c["name"] == DEAD_RULE.check for c in broken_a.scenario(s)["checks"])
    }
    assert broken_a.failing() == expected, broken_a.phase_errors()
    kinds = {c["kind"] for s in SCENARIOS_A for c in broken_a.scenario(s)["checks"]}
    assert {"metric", "alert", "alert_forbidden", "dashboard", "delivery", "boundary"} <= kinds
    for s in SCENARIOS_A:
        assert all(f["heal"]["healed"] for f in broken_a.scenario(s)["faults"])


@pytest.mark.live
def test_raised_threshold_is_judged_by_the_contract_threshold(broken_a: BrokenRun) -> None:
    """The just-above run's signal is proven above the contract's 1 % while the rule, raised
    to 10 %, never fires: the threshold comes from the contract, not from the rule."""
    boundary = broken_a.check("S1@above", "boundary RouterNatsHighAckFailureRate above threshold")
    assert boundary["status"] == "pass", boundary["summary"]
    assert 0.01 < boundary["evidence"]["value"] < 0.1


@pytest.mark.live
def test_longer_for_is_judged_by_the_contract_with_the_floor_beside_it(
    broken_a: BrokenRun,
) -> None:
    e = broken_a.check(LONG_FOR.scenario, LONG_FOR.check)["evidence"]
    assert e["loaded_rule"]["for_s"] == 12  # 6m on the local clock
    assert e["time_to_fire_s"] > e["objective_s"] == 10  # 5m objective
    assert e["floor_s"] > e["objective_s"] and e["slack_s"] < 0


@pytest.mark.live
def test_dead_forbidden_rule_is_unproven_in_the_run(broken_a: BrokenRun) -> None:
    assert "RouterNatsConnectionDown" in broken_a.evidence["unproven_forbidden"]
    rule = broken_a.check(DEAD_RULE.scenario, DEAD_RULE.check)["evidence"]["loaded_rule"]
    assert rule["health"] == "err" and "duplicate series" in rule["last_error"]


@pytest.mark.live
def test_inhibition_is_recorded_from_alertmanager(broken_a: BrokenRun) -> None:
    e = broken_a.check(INHIBITED.scenario, INHIBITED.check)["evidence"]
    assert any(h["inhibited_by"] for h in e["alertmanager"]), e["alertmanager"]


@pytest.mark.live
def test_resolved_off_still_fires_and_notifies(broken_a: BrokenRun) -> None:
    e = broken_a.check(RESOLVED_OFF.scenario, RESOLVED_OFF.check)["evidence"]
    assert e["time_to_notify_s"] is not None
    assert not any(n["status"] == "resolved" for n in e["notifications"])
    assert e["resolved_at"] is not None  # Prometheus resolved it; only the notification is gone


@pytest.mark.live
def test_severity_change_also_shows_as_the_wrong_receiver(broken_a: BrokenRun) -> None:
    summary = broken_a.check(SEVERITY.scenario, SEVERITY.check)["summary"]
    assert "notification went to router-warning, the contract says router-critical" in summary


# --- stack B: the router's code and a dashboard --------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("breakage", STACK_B, ids=lambda b: b.what.split(":")[1].strip()[:40])
def test_stack_b_breakage_is_caught(broken_b: BrokenRun, breakage: Breakage) -> None:
    assert_caught(broken_b, breakage)


@pytest.mark.live
def test_stack_b_only_the_broken_checks_fail(broken_b: BrokenRun) -> None:
    assert broken_b.returncode == 1, broken_b.stderr[-3000:]
    expected = {(b.scenario, b.check) for b in STACK_B} | CONSEQUENCES_B
    assert broken_b.failing() == expected, broken_b.phase_errors()
    for s in SCENARIOS_B:
        assert all(f["heal"]["healed"] for f in broken_b.scenario(s)["faults"])


@pytest.mark.live
def test_early_dead_letter_is_proven_by_the_server_not_the_router(broken_b: BrokenRun) -> None:
    ledger = broken_b.scenario(EARLY_DLQ.scenario)["workload"]
    dead = ledger["dead_lettered_messages"]
    assert dead and all(m["deliveries"] == 3 for m in dead)
    assert all(m["source"].startswith("server's") for m in dead)
    assert ledger["server"]["max_deliver"] == 5
    # the router's own metrics still look healthy: exhaustion and DLQ counted as usual
    exhausted = broken_b.check(
        "S3", "metric sum(rate(router_jetstream_maxdeliver_exhausted_total[$window]))"
    )
    assert exhausted["status"] == "pass"


@pytest.mark.live
def test_wrong_label_value_is_a_fail_with_the_real_series_seen(broken_b: BrokenRun) -> None:
    e = broken_b.check(WRONG_LABEL.scenario, WRONG_LABEL.check)["evidence"]
    seen = [r["labels"].get("assignment_id") for q in e["queries"] for r in q["result"]]
    assert "unknown" in seen and "decide" in seen


@pytest.mark.live
def test_uncounted_failures_and_broken_panel_evidence(broken_b: BrokenRun) -> None:
    e = broken_b.check(NO_ACK_FAILURE_COUNT.scenario, NO_ACK_FAILURE_COUNT.check)["evidence"]
    assert e["value"] == 0 and e["baseline"] == 0
    s1 = broken_b.scenario("S1")
    (toxic,) = s1["faults"]
    assert toxic["heal"]["evidence"]["stats_at_removal"]["acted"] > 0  # the fault did happen
    panel = broken_b.check(BROKEN_PANEL.scenario, BROKEN_PANEL.check)["evidence"]
    assert panel["queries"][0]["series"] == 0


# --- stack C: dashboard panels only ------------------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("breakage", STACK_C, ids=lambda b: b.what.split(":")[1].strip()[:40])
def test_stack_c_breakage_is_caught(broken_c: BrokenRun, breakage: Breakage) -> None:
    assert_caught(broken_c, breakage)


@pytest.mark.live
def test_stack_c_only_the_broken_panels_fail(broken_c: BrokenRun) -> None:
    """The control beside the breakages: with the same router, rules and routing, every other
    check of S1 and S3 passes, including the other queries of the broken panels' scenarios."""
    assert broken_c.returncode == 1, broken_c.stderr[-3000:]
    assert broken_c.failing() == {(b.scenario, b.check) for b in STACK_C}, broken_c.phase_errors()
    ratios = broken_c.check(RATIO_REF.scenario, RATIO_REF.check)["evidence"]["queries"]
    (ack,) = [q for q in ratios if q["refId"] == "C"]
    assert "router_nats_nak_failures_total" in ack["query"]  # judged as the dashboard has it
    for s in SCENARIOS_C:
        assert all(f["heal"]["healed"] for f in broken_c.scenario(s)["faults"])
