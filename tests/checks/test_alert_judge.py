"""The alert judges on synthetic timelines, notifications and rules, including each way the
issue says an alert check was fooled: a budget that follows a slower rule, a misroute the
"expected" receiver followed, changed severity, a dropped `by()` label, resolved notifications
switched off, an inhibited alert, a notification from an earlier run, and a forbidden alert
whose rule cannot run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from harness.checks.alert_poller import Sighting
from harness.checks.alerts import (
    AlertEvidence,
    ForbiddenEvidence,
    NotificationRecord,
    NotifiedAlertRecord,
    Objectives,
    judge_alert,
    judge_forbidden,
)
from harness.prometheus_alerts import AlertInstance, LoadedRule

T0 = 1000.0  # fault start
HEALED = T0 + 30
LABELS = {"severity": "critical", "service": "router", "component": "nats", "team": "platform"}
WANT = Objectives(
    labels=LABELS,
    carries=[],
    receiver="router-critical",
    send_resolved=True,
    detect_s=21.0,
    resolve_s=28.0,
    notify_s=31.0,
)
RULE = LoadedRule(
    labels=LABELS,
    query="sum(rate(x[10s])) > 0.01",
    for_s=10.0,
    group_interval_s=1.0,
    health="ok",
    last_error="",
    last_evaluation="2026-12-01T10:00:00Z",
)
INSTANCE_LABELS = {"alertname": "A", **LABELS}


def replace(model: Any, **changes: Any) -> Any:
    return model.model_copy(update=changes)


def instance(
    labels: dict[str, str], pending: list[float] | None = None, firing: list[float] | None = None
) -> AlertInstance:
    return AlertInstance(labels=labels, pending=pending or [], firing=firing or [])


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def note(
    at: float, status: str, receiver: str = "router-critical", **labels: str
) -> NotificationRecord:
    return NotificationRecord(
        received_at=at,
        receiver=receiver,
        status=status,
        alerts=[NotifiedAlertRecord(labels={**INSTANCE_LABELS, **labels}, status=status)],
    )


def good(**changes: object) -> AlertEvidence:
    evidence = AlertEvidence(
        alert="A",
        contract=WANT,
        loaded_rule=RULE,
        scrape_interval_s=1.0,
        evaluation_interval_s=1.0,
        alerts_series=[
            instance(
                INSTANCE_LABELS,
                pending=[T0 + 3 + i for i in range(10)],
                firing=[T0 + 13 + i for i in range(25)],
            )
        ],
        polled=[],
        alertmanager=[
            Sighting(
                at=T0 + 14,
                state="active",
                receivers=["router-critical"],
                labels=INSTANCE_LABELS,
            )
        ],
        notifications=[note(T0 + 14.5, "firing"), note(HEALED + 20, "resolved")],
        fault_start=T0,
        healed_at=HEALED,
        observed_until=HEALED + 40,
        still_firing=False,
    )
    return replace(evidence, **changes)


def test_the_unbroken_alert_passes_with_floor_and_slack() -> None:
    status, summary, layers = judge_alert(good())
    assert status == "pass", summary
    assert layers.time_to_fire_s == 13.0
    assert layers.floor_s == 1.0 + 1.0 + 10.0
    assert layers.slack_s == 21.0 - 12.0


def test_a_slower_rule_breaks_the_contract_objective_not_a_budget_it_brings() -> None:
    slow = replace(RULE, for_s=30.0)
    late = [instance(INSTANCE_LABELS, pending=[T0 + 3], firing=[T0 + 33 + i for i in range(5)])]
    status, summary, layers = judge_alert(good(loaded_rule=slow, alerts_series=late))
    assert status == "fail"
    assert "fired 33.0s after the fault, objective 21.0s" in summary
    assert "fired 3.0s after the fault was healed" in summary
    assert layers.floor_s == 32.0 and layers.slack_s == -11.0


def test_changed_severity_fails_on_labels() -> None:
    rule = replace(RULE, labels={**LABELS, "severity": "warning"})
    status, summary, _ = judge_alert(good(loaded_rule=rule))
    assert status == "fail" and "severity='warning' (contract: 'critical')" in summary


def test_misroute_fails_even_though_a_notification_arrived() -> None:
    notes = [
        note(T0 + 14.5, "firing", "router-warning"),
        note(HEALED + 20, "resolved", "router-warning"),
    ]
    status, summary, _ = judge_alert(good(notifications=notes))
    assert status == "fail"
    assert "notification went to router-warning, the contract says router-critical" in summary


def test_a_receiver_that_notifies_nobody_fails() -> None:
    status, summary, _ = judge_alert(good(notifications=[]))
    assert status == "fail" and "no firing notification reached router-critical" in summary


def test_resolved_notifications_switched_off_fail_where_the_contract_promises_them() -> None:
    status, summary, _ = judge_alert(good(notifications=[note(T0 + 14.5, "firing")]))
    assert status == "fail" and "no resolved notification reached router-critical" in summary
    quiet = replace(WANT, send_resolved=False)
    assert judge_alert(good(contract=quiet, notifications=[note(T0 + 14.5, "firing")]))[0] == "pass"


def test_an_inhibited_alert_fails_on_alertmanager() -> None:
    held = [
        Sighting(
            at=T0 + 14,
            state="suppressed",
            inhibited_by=["f00d"],
            receivers=["router-critical"],
            labels=INSTANCE_LABELS,
        )
    ]
    status, summary, _ = judge_alert(good(alertmanager=held, notifications=[]))
    assert status == "fail"
    assert (
        "Alertmanager held it suppressed while it fired (inhibited or silenced by f00d)" in summary
    )


def test_a_notification_from_before_the_first_firing_never_counts() -> None:
    earlier = [note(T0 - 120, "firing"), note(T0 - 60, "resolved")]
    status, summary, _ = judge_alert(good(notifications=earlier))
    assert status == "fail" and "no firing notification reached" in summary


def test_a_notification_for_another_instance_never_counts() -> None:
    other = [note(T0 + 14.5, "firing", instance="router-2:9001"), note(HEALED + 20, "resolved")]
    others = [
        instance(
            {**INSTANCE_LABELS, "instance": "router-1:9001"},
            firing=[T0 + 13 + i for i in range(25)],
        )
    ]
    status, summary, _ = judge_alert(good(alerts_series=others, notifications=other))
    assert status == "fail" and "no firing notification reached" in summary


def test_a_dropped_by_label_fails_when_the_contract_says_it_is_carried() -> None:
    want = replace(WANT, carries=["source"])
    status, summary, _ = judge_alert(good(contract=want))
    assert status == "fail" and "firing instances lack label(s) source" in summary


def test_already_firing_before_the_fault_fails() -> None:
    early = [instance(INSTANCE_LABELS, firing=[T0 - 5 + i for i in range(30)])]
    status, summary, _ = judge_alert(good(alerts_series=early))
    assert status == "fail" and "already firing" in summary


def test_never_fired_and_still_firing_after_heal_fail() -> None:
    assert judge_alert(good(alerts_series=[]))[1].startswith("never fired")
    status, summary, _ = judge_alert(good(still_firing=True))
    assert status == "fail" and "still firing after heal" in summary


def test_no_contract_entry_or_no_fault_is_an_error() -> None:
    assert judge_alert(good(contract=None))[0] == "error"
    assert judge_alert(good(fault_start=None))[0] == "error"


def forbidden(**changes: object) -> ForbiddenEvidence:
    base = ForbiddenEvidence(
        alert="B",
        loaded_rule=replace(RULE, last_evaluation=iso(HEALED + 39)),
        alerts_series=[],
        polled=[],
        window=(T0 - 10, HEALED + 40),
    )
    return replace(base, **changes)


def test_forbidden_alert_silent_with_a_live_rule_passes() -> None:
    assert judge_forbidden(forbidden())[0] == "pass"


def test_forbidden_alert_that_fired_fails_and_a_pending_one_is_a_near_miss() -> None:
    status, summary = judge_forbidden(forbidden(alerts_series=[instance({}, firing=[T0 + 4])]))
    assert status == "fail" and summary.startswith("fired at")
    status, summary = judge_forbidden(forbidden(alerts_series=[instance({}, pending=[T0 + 4])]))
    assert status == "pass" and "near miss: pending at" in summary


def test_forbidden_alert_whose_rule_cannot_run_is_not_a_pass() -> None:
    """Fooled before: "never pending or firing" held for a rule that errors every evaluation,
    is missing, or is never evaluated."""
    broken = replace(RULE, health="err", last_error="many-to-many matching not allowed")
    status, summary = judge_forbidden(forbidden(loaded_rule=broken))
    assert status == "fail" and "many-to-many" in summary and "silence proves nothing" in summary
    assert judge_forbidden(forbidden(loaded_rule=None))[0] == "fail"
    stale = replace(RULE, last_evaluation=iso(T0 - 60))
    assert judge_forbidden(forbidden(loaded_rule=stale))[0] == "fail"


def test_notification_later_than_its_objective_fails() -> None:
    late = [note(T0 + 35, "firing"), note(HEALED + 20, "resolved")]
    status, summary, _ = judge_alert(good(notifications=late))
    assert status == "fail" and "notified 35.0s after the fault, objective 31.0s" in summary


def test_prometheus_timestamps_with_nanoseconds_or_none() -> None:
    from harness.prometheus_alerts import parse_timestamp

    assert parse_timestamp("2026-12-01T10:18:54.285063776Z") == pytest.approx(1796120334.285063)
    assert parse_timestamp("2026-12-01T10:18:54Z") == 1796120334.0
    assert parse_timestamp("0001-01-01T00:00:00Z") is None and parse_timestamp(None) is None


def test_a_sibling_that_fired_for_one_evaluation_is_not_the_instance_judged() -> None:
    """A paused node's alert fires and is notified; a healthy peer's instance fired first, for
    one evaluation, and resolved before Alertmanager's first flush (never notified firing).
    Detection counts from the first instance; the notification is judged for the fault's own."""
    blip = {**INSTANCE_LABELS, "server_id": "n2"}
    paused = {**INSTANCE_LABELS, "server_id": "n1"}
    series = [
        instance(blip, pending=[T0 + 3], firing=[T0 + 5]),
        instance(paused, pending=[T0 + 5], firing=[T0 + 7 + i for i in range(20)]),
    ]
    notes = [note(T0 + 16, "firing", server_id="n1"), note(HEALED + 10, "resolved", server_id="n1")]
    status, summary, layers = judge_alert(good(alerts_series=series, notifications=notes))
    assert status == "pass", summary
    assert layers.time_to_fire_s == 5.0
    assert layers.instance_labels == paused
    # the fault's own instance never notified: still a failure
    unsent = [note(HEALED + 10, "resolved", server_id="n1")]
    status, summary, _ = judge_alert(good(alerts_series=series, notifications=unsent))
    assert status == "fail" and "no firing notification reached router-critical" in summary
