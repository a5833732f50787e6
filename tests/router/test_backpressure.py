"""Backpressure status from the three thresholds (catalogue §6.10, PERF-004): two or more
overloaded → active, exactly one → warning, none → inactive; metrics on every transition."""

from __future__ import annotations

import pytest

from router.backpressure import ACTIVE, INACTIVE, WARNING, Backpressure, Inputs, LatencyWindow
from router.config import Config
from router.metrics import BP_TRIGGERS, Metrics

SUBJECT = "beamline.router.v1.decide"
CONFIG = Config(bp_queue_threshold=100, bp_latency_threshold_ms=2000, bp_inflight_threshold=50)
CALM = Inputs(pending=100, p95_ms=2000, inflight=50)  # at, not above, every threshold


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, {"subject": SUBJECT, **labels}) or 0.0


@pytest.mark.parametrize(
    ("inputs", "status", "triggers"),
    [
        (CALM, INACTIVE, []),
        (Inputs(101, 0, 0), WARNING, ["queue_overload"]),
        (Inputs(0, 2001, 0), WARNING, ["latency_overload"]),
        (Inputs(0, 0, 51), WARNING, ["inflight_overload"]),
        (Inputs(101, 2001, 0), ACTIVE, ["queue_overload", "latency_overload"]),
        (Inputs(101, 0, 51), ACTIVE, ["queue_overload", "inflight_overload"]),
        (Inputs(0, 2001, 51), ACTIVE, ["latency_overload", "inflight_overload"]),
        (Inputs(101, 2001, 51), ACTIVE, list(BP_TRIGGERS)),
    ],
)
def test_two_of_three_thresholds(inputs: Inputs, status: str, triggers: list[str]) -> None:
    metrics = Metrics(CONFIG)
    bp = Backpressure(CONFIG, metrics)
    assert bp.overloaded(inputs) == triggers
    assert bp.evaluate(inputs) == status
    assert bp.active is (status == ACTIVE)
    assert value(metrics, "router_intake_backpressure_active") == (1 if status == ACTIVE else 0)
    for trigger in BP_TRIGGERS:
        counted = value(metrics, "router_intake_backpressure_triggered_total", trigger=trigger)
        assert counted == (1 if status == ACTIVE and trigger in triggers else 0), trigger


def test_transitions_count_events_and_recovery() -> None:
    metrics = Metrics(CONFIG)
    bp = Backpressure(CONFIG, metrics)
    events = "router_backpressure_events_total"
    bp.evaluate(Inputs(0, 0, 51))  # warning
    bp.evaluate(Inputs(0, 2001, 51))  # active
    bp.evaluate(Inputs(0, 2001, 51))  # still active: nothing new counted
    bp.evaluate(Inputs(0, 2001, 0))  # back to warning: a recovery
    bp.evaluate(CALM)  # inactive: another recovery
    assert value(metrics, events, event_type="backpressure_warning") == 1
    assert value(metrics, events, event_type="backpressure_active") == 1
    assert value(metrics, events, event_type="recovery") == 2
    assert value(metrics, "router_backpressure_recovery_total") == 2
    assert value(metrics, "router_intake_backpressure_active") == 0
    assert value(metrics, "router_intake_backpressure_triggered_total", trigger="inflight_overload")
    assert bp.status == INACTIVE


def test_latency_window_percentiles_in_ms_and_expiry() -> None:
    window = LatencyWindow(window=10.0)
    for i in range(1, 101):
        window.add(i / 1000.0, now=100.0)  # 1 ms .. 100 ms
    p50, p95, p99 = window.percentiles((0.50, 0.95, 0.99), now=105.0)
    assert (round(p50), round(p95), round(p99)) == (51, 95, 99)
    assert window.percentiles((0.95,), now=111.0) == [0.0]  # all samples older than the window
