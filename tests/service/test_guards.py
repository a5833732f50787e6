"""Guard judgement over stand-in adapters (the live test runs one against real Prometheus):
a PromQL guard trips on any non-zero sample, an alert guard on firing (Prometheus) or
active (Alertmanager), and a guard that cannot be evaluated trips as unevaluable."""

from __future__ import annotations

from typing import Any

import pytest

from harness.alertmanager import HeldAlert
from harness.errors import PrometheusError
from harness.prometheus import Sample
from harness.service.guards import BLIND_GRACE_S, Trip, evaluate, watch
from harness.service.schedules import GuardSpec


class FakePrometheus:
    def __init__(self, samples: list[float] | None = None, alerts: list[dict] | None = None):
        self.samples = samples or []
        self._alerts = alerts or []

    async def instant(self, query: str) -> list[Sample]:
        if query == "broken":
            raise PrometheusError("down")
        return [Sample({"i": str(i)}, v, 0.0) for i, v in enumerate(self.samples)]

    async def alerts(self) -> list[dict[str, Any]]:
        return self._alerts


class FakeAlertmanager:
    def __init__(self, held: list[HeldAlert] | None = None):
        self.held = held or []

    async def alerts(self, name: str) -> list[HeldAlert]:
        return [a for a in self.held if a.labels.get("alertname") == name]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("samples", "trips"), [([], False), ([0.0], False), ([float("nan")], False), ([0, 0.07], True)]
)
async def test_promql_guard_trips_on_a_non_zero_sample(samples: list[float], trips: bool) -> None:
    guard = GuardSpec(name="g", promql="ratio > 0.05")
    value = await evaluate(guard, FakePrometheus(samples), FakeAlertmanager())  # type: ignore[arg-type]
    assert (value is not None) is trips


@pytest.mark.anyio
async def test_alert_guard_trips_on_firing_not_pending() -> None:
    guard = GuardSpec(name="slo", alert="CustomerSLO")
    pending = FakePrometheus(alerts=[{"labels": {"alertname": "CustomerSLO"}, "state": "pending"}])
    assert await evaluate(guard, pending, FakeAlertmanager()) is None  # type: ignore[arg-type]
    firing = FakePrometheus(alerts=[{"labels": {"alertname": "CustomerSLO"}, "state": "firing"}])
    value = await evaluate(guard, firing, FakeAlertmanager())  # type: ignore[arg-type]
    assert value["prometheus"] == [{"alertname": "CustomerSLO"}]
    held = FakeAlertmanager([HeldAlert({"alertname": "CustomerSLO"}, "active")])
    assert (await evaluate(guard, FakePrometheus(), held))["alertmanager"]  # type: ignore[arg-type]
    other = FakeAlertmanager([HeldAlert({"alertname": "Other"}, "active")])
    assert await evaluate(guard, FakePrometheus(), other) is None  # type: ignore[arg-type]


def scripted(outcomes: list[str]) -> Any:
    """A guard check answering `ok`, `blind` or `trip` in turn, on a clock of one second per
    check (the last answer repeats)."""
    calls = iter(range(10_000))

    async def check(_guards: Any, _targets: Any) -> Trip | None:
        i = next(calls)
        outcome = outcomes[min(i, len(outcomes) - 1)]
        if outcome == "ok":
            return None
        return Trip("g", float(i), None, "t", outcome, unevaluable=outcome == "blind")

    return check


@pytest.mark.anyio
async def test_a_blind_guard_trips_only_once_blind_for_its_grace() -> None:
    assert BLIND_GRACE_S == 5.0
    guard = [GuardSpec(name="g", alert="A")]
    # a momentary gap (an Alertmanager restart) then a real trip: the real trip is reported
    gap_then_trip = scripted(["blind", "blind", "ok", "trip"])
    trip = await watch(guard, [], 0.0, check=gap_then_trip)
    assert trip.detail == "trip" and not trip.unevaluable and trip.at == 3.0
    # blind for good: trips as unevaluable 5 checks (5 s) after it went blind, saying so
    trip = await watch(guard, [], 0.0, check=scripted(["ok", "blind"]))
    assert trip.unevaluable and trip.at == 6.0 and trip.detail == "blind (for 5.0s)"
    # the grace restarts after the guard could be evaluated again
    trip = await watch(guard, [], 0.0, check=scripted(["blind"] * 4 + ["ok"] + ["blind"]))
    assert trip.unevaluable and trip.at == 10.0
