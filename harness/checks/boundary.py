"""Boundary check: a boundary variant's fault really put the signal on the side of the contract
threshold it claims (just above, or just below), measured over the fault window.

Without it a "just below, stays silent" run could pass by injecting nothing at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.checks.base import Check, CheckResult, RunView, Window, result
from harness.contract import Threshold
from harness.durations import format_duration
from harness.evidence.record import Status

WINDOW = "$window"


@dataclass
class BoundaryObservation:
    alert: str
    side: str
    threshold: Threshold | None
    query: str | None = None
    window: Window | None = None
    value: float | None = None


def judge_boundary(obs: BoundaryObservation) -> tuple[Status, str]:
    if obs.threshold is None:
        return "error", f"the alerting contract has no threshold for {obs.alert}"
    if obs.window is None:
        return "error", "no fault window to measure the signal over"
    if obs.value is None or math.isnan(obs.value):
        return "error", f"the threshold signal returned no value: {obs.query}"
    t = obs.threshold
    tripped = t.tripped(obs.value)
    where = f"signal {obs.value:.4g} vs threshold {t.op} {t.value:g} ({t.text})"
    if (obs.side == "above") != tripped:
        return (
            "error",
            f"the injected level missed its side: expected just {obs.side} the threshold, {where}",
        )
    return "pass", f"just {obs.side}: {where}"


class BoundaryCheck(Check):
    kind = "boundary"

    def __init__(self, alert: str, side: str):
        super().__init__(f"boundary {alert} {side} threshold")
        self.alert = alert
        self.side = side

    async def collect(self, run: RunView) -> BoundaryObservation:
        entry = run.contract.get(self.alert)
        threshold = entry.threshold if entry else None
        window = run.fault_window()
        obs = BoundaryObservation(self.alert, self.side, threshold, window=window)
        if threshold is None or window is None:
            return obs
        obs.query = threshold.signal.replace(
            WINDOW, format_duration(math.ceil(max(1.0, window.length)))
        )
        samples = await run.prometheus.instant(obs.query, at=window.end)
        values = [s.value for s in samples if not math.isnan(s.value)]
        obs.value = max(values) if values else None
        return obs

    def judge(self, observed: BoundaryObservation) -> CheckResult:
        status, summary = judge_boundary(observed)
        return result(
            self,
            status,
            summary,
            {
                "alert": observed.alert,
                "side": observed.side,
                "threshold": observed.threshold.model_dump() if observed.threshold else None,
                "query": observed.query,
                "value": observed.value,
            },
        )
