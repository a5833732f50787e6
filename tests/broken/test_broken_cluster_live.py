"""The NATS cluster alerts broken the way teams break them, each caught by its cluster scenario.

A cluster stack (3 nodes per slot) starts from a copy of deploy/ in which each of the six
cluster alerts is broken once (cluster_breakages.py): a demoted severity, a `for:` thirty times
the promised one, a route to the wrong receiver, an aggregation that drops a label the contract
says the alert carries, a `by` that counts each server apart, a misnamed metric. CL-004,
CL-005 and CL-008 run against it with the repo's untouched contract. Each breakage fails the
check of the alert it broke, with its reason; the control asserts that every other check of the
same run (metrics, panels, delivery, the alerts that must stay silent) passes.
"""

from __future__ import annotations

import pytest

from tests.broken.breakages import Breakage
from tests.broken.cluster_breakages import (
    AGGREGATED,
    CLUSTER_BREAKAGES,
    CLUSTER_CONSEQUENCES,
    CLUSTER_SCENARIOS,
    DEMOTED,
    MISROUTED,
    PER_SERVER,
    RENAMED,
    SLOW,
)
from tests.broken.runs import BrokenRun


@pytest.mark.live
@pytest.mark.parametrize("breakage", CLUSTER_BREAKAGES, ids=lambda b: b.what.split(":")[0])
def test_cluster_breakage_is_caught(broken_cluster: BrokenRun, breakage: Breakage) -> None:
    check = broken_cluster.check(breakage.scenario, breakage.check)
    assert check["status"] == "fail", (breakage.what, check["status"], check["summary"])
    assert breakage.caught_by in check["summary"], (breakage.what, check["summary"])


@pytest.mark.live
def test_cluster_only_the_broken_checks_fail(broken_cluster: BrokenRun) -> None:
    """The control beside the breakages: every check of CL-004, CL-005 and CL-008 that no
    breakage touches passes (the metric and panel checks, delivery, the alerts each scenario
    forbids), and every fault was healed."""
    assert broken_cluster.returncode == 1, broken_cluster.stderr[-3000:]
    expected = {(b.scenario, b.check) for b in CLUSTER_BREAKAGES} | CLUSTER_CONSEQUENCES
    failing = broken_cluster.failing()
    surprises = {f"{s} / {c}": broken_cluster.check(s, c)["summary"] for s, c in failing ^ expected}
    assert failing == expected, surprises
    checks = [c for s in CLUSTER_SCENARIOS for c in broken_cluster.scenario(s)["checks"]]
    passed = {c["kind"] for c in checks if c["status"] == "pass"}
    assert {"metric", "alert_forbidden", "dashboard", "delivery"} <= passed, passed
    for s in CLUSTER_SCENARIOS:
        assert all(f["heal"]["healed"] for f in broken_cluster.scenario(s)["faults"])


@pytest.mark.live
def test_demoted_severity_also_shows_as_the_wrong_receiver(broken_cluster: BrokenRun) -> None:
    for scenario in ("CL-004", DEMOTED.scenario):
        summary = broken_cluster.check(scenario, DEMOTED.check)["summary"]
        assert DEMOTED.caught_by in summary, (scenario, summary)
        assert "notification went to router-warning, the contract says router-critical" in summary


@pytest.mark.live
def test_slow_and_renamed_rules_stay_healthy_yet_silent(broken_cluster: BrokenRun) -> None:
    """Neither rule errors: a `for:` too long and a series that does not exist are silent,
    which only a scenario expecting the alert can tell from "nothing happened"."""
    for breakage in (SLOW, RENAMED):
        e = broken_cluster.check(breakage.scenario, breakage.check)["evidence"]
        assert e["loaded_rule"]["health"] == "ok", (breakage.what, e["loaded_rule"])
    slow = broken_cluster.check(SLOW.scenario, SLOW.check)["evidence"]["loaded_rule"]
    assert slow["for_s"] == 60  # 30m on the local clock (÷30)


@pytest.mark.live
def test_misrouted_leaderless_alert_fired_and_went_to_warning_only(
    broken_cluster: BrokenRun,
) -> None:
    """Prometheus did its part (the alert fired, with the contract's severity); only the route
    was wrong: every notification of it reached router-warning, none router-critical. (Not
    judged here: its time to fire, which depends on whether the survivor of CL-004 was the
    stream leader, whose stepdown waits for NATS's lost-quorum interval.)"""
    e = broken_cluster.check(MISROUTED.scenario, MISROUTED.check)["evidence"]
    assert e["first_firing"] is not None and e["loaded_rule"]["labels"]["severity"] == "critical"
    receivers = {
        n["receiver"]
        for n in e["notifications"]
        for a in n["alerts"]
        if a["labels"]["alertname"] == e["alert"]
    }
    assert receivers == {"router-warning"}, e["notifications"]


@pytest.mark.live
def test_aggregated_and_per_server_rules_evidence(broken_cluster: BrokenRun) -> None:
    replica = broken_cluster.check(AGGREGATED.scenario, AGGREGATED.check)["evidence"]
    firing = [i["labels"] for i in replica["alerts_series"] if i["firing"]]
    assert firing and not any("replica" in labels for labels in firing), firing
    assert "router-stream" in {labels["stream_name"] for labels in firing}, firing
    # the three stepdowns happened, each moving the leader: the rule had changes to count
    stepdowns = broken_cluster.scenario(PER_SERVER.scenario)["faults"]
    moved = [f["read_back"]["leader_before"] != f["read_back"]["leader_after"] for f in stepdowns]
    assert moved == [True, True, True], [f["read_back"] for f in stepdowns]
