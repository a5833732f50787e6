"""Guards: stop conditions checked every evaluation interval while a run is in progress.

A guard names an alert (it trips when Prometheus reports it firing or Alertmanager holds it
active) or a PromQL expression (it trips when the result has any sample with a non-zero value,
so `ratio > 0.05` and `vector(1)` trip and an empty result does not). A guard that cannot be
evaluated — Prometheus down, a query error — and still so at a check 5 s or more later trips
too: a run whose safety net is blind is stopped, and the record says the guard could
not be evaluated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio

from harness.alertmanager import AlertmanagerAPI
from harness.config import Target
from harness.errors import describe
from harness.prometheus import PrometheusAPI
from harness.service.schedules import GuardSpec

GUARD_TIMEOUT_S = 5.0
# How long a guard may stay unevaluable before it trips. A momentary gap (the local stack
# restarts Alertmanager before each scenario to reset its alert state) is not a blind safety
# net; one still there at a check 5 s later is.
BLIND_GRACE_S = 5.0


@dataclass(frozen=True)
class Trip:
    """Why a guard stopped the run: `aborted_by` in the record and the history."""

    guard: str
    at: float
    value: Any
    target: str
    detail: str = ""
    unevaluable: bool = False

    def document(self) -> dict[str, Any]:
        return {
            "guard": self.guard,
            "at": self.at,
            "value": self.value,
            "target": self.target,
            "detail": self.detail,
            "unevaluable": self.unevaluable,
        }


async def evaluate(
    guard: GuardSpec, prometheus: PrometheusAPI, alertmanager: AlertmanagerAPI
) -> Any:
    """The guard's value when it trips (what it saw), None when it holds."""
    if guard.alert:
        firing = [
            a.get("labels", {})
            for a in await prometheus.alerts()
            if a.get("labels", {}).get("alertname") == guard.alert and a.get("state") == "firing"
        ]
        held = [a.labels for a in await alertmanager.alerts(guard.alert) if a.state == "active"]
        return {"prometheus": firing, "alertmanager": held} if firing or held else None
    samples = await prometheus.instant(guard.promql or "")
    tripped = [
        {"labels": s.labels, "value": s.value}
        for s in samples
        if s.value != 0 and not math.isnan(s.value)
    ]
    return tripped or None


async def check_once(guards: list[GuardSpec], targets: list[Target]) -> Trip | None:
    """Every guard against every target's observability once; the first trip."""
    for target in targets:
        prometheus = PrometheusAPI(target.prometheus_url, timeout=GUARD_TIMEOUT_S)
        alertmanager = AlertmanagerAPI(target.alertmanager_url, timeout=GUARD_TIMEOUT_S)
        for guard in guards:
            try:
                with anyio.fail_after(GUARD_TIMEOUT_S + 2):
                    value = await evaluate(guard, prometheus, alertmanager)
            except Exception as exc:  # whatever it is, the guard is blind
                return Trip(
                    guard.name,
                    time.time(),
                    None,
                    target.name,
                    f"could not evaluate: {describe(exc)}",
                    unevaluable=True,
                )
            if value is not None:
                what = f"alert {guard.alert} firing" if guard.alert else f"{guard.promql} → value"
                return Trip(guard.name, time.time(), value, target.name, what)
    return None


async def watch(
    guards: list[GuardSpec],
    targets: list[Target],
    interval: float,
    check: Callable[[list[GuardSpec], list[Target]], Awaitable[Trip | None]] = check_once,
) -> Trip:
    """Returns when a guard trips; checked every `interval` seconds (the targets' evaluation
    interval: a rule cannot change state faster). A guard that cannot be evaluated trips once
    it has stayed so for BLIND_GRACE_S."""
    blind_since: float | None = None
    while True:
        trip = await check(guards, targets)
        if trip is not None and not trip.unevaluable:
            return trip
        if trip is None:
            blind_since = None
        else:
            blind_since = trip.at if blind_since is None else blind_since
            if trip.at - blind_since >= BLIND_GRACE_S:
                detail = f"{trip.detail} (for {trip.at - blind_since:.1f}s)"
                return replace(trip, detail=detail)
        await anyio.sleep(interval)
