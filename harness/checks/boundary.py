"""Boundary check: a boundary variant's fault really put the signal on the side of the contract
threshold it claims (just above, or just below), measured over the fault window.

Without it a "just below, stays silent" run could pass by injecting nothing at all. Re-judged
against a revised contract, a changed threshold value is applied to the observed signal; a
changed signal was never observed, so the verdict is then an error.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from harness.checks.base import Check, JudgeContext, Judged, Raw, RunView, Setup, Window
from harness.contract import Threshold
from harness.durations import format_duration
from harness.evidence.record import CheckEvidence, Phase, Status

if TYPE_CHECKING:
    from harness.scenario import Scenario

WINDOW = "$window"


class BoundaryEvidence(CheckEvidence):
    """The contract threshold, its signal as evaluated over the fault window, and the value."""

    alert: str = ""
    side: Literal["above", "below"] | None = None
    threshold: Threshold | None = None
    window: tuple[float, float] | None = None
    query: str | None = None
    value: float | None = None


def judge_boundary(obs: BoundaryEvidence, ctx: JudgeContext | None = None) -> tuple[Status, str]:
    threshold = obs.threshold
    if ctx is not None and ctx.contract is not None:
        entry = ctx.contract.get(obs.alert)
        threshold = entry.threshold if entry else None
        recorded = obs.threshold
        if threshold is not None and recorded is not None and threshold.signal != recorded.signal:
            return (
                "error",
                "the contract's threshold signal is not the one observed: "
                f"{threshold.signal!r} (observed {recorded.signal!r})",
            )
    if threshold is None:
        return "error", f"the alerting contract has no threshold for {obs.alert}"
    if obs.window is None:
        return "error", "no fault window to measure the signal over"
    if obs.value is None or math.isnan(obs.value):
        return "error", f"the threshold signal returned no value: {obs.query}"
    tripped = threshold.tripped(obs.value)
    t = threshold
    where = f"signal {obs.value:.4g} vs threshold {t.op} {t.value:g} ({t.text})"
    if (obs.side == "above") != tripped:
        return (
            "error",
            f"the injected level missed its side: expected just {obs.side} the threshold, {where}",
        )
    return "pass", f"just {obs.side}: {where}"


def measured_window(run: RunView) -> Window | None:
    """The fault window, from when the first fault's injection began rather than when its
    read-back proved it in effect: a fault whose effect is its own proof (a leader stepdown is
    applied once the leader moved) happens before `applied_at`, and a signal that counts such
    events would miss the first one (seen: CL-008@above counted 2 of its 3 leader changes)."""
    window = run.fault_window()
    inject = run.span(Phase.INJECT)
    if window is None or inject is None or not run.result.faults:
        return window
    began = inject.start + min(f.planned_start_s for f in run.result.faults)
    return Window(min(window.start, began), window.end)


class BoundaryCheck(Check):
    kind = "boundary"
    evidence_model = BoundaryEvidence
    column = "alerts"

    def __init__(self, alert: str, side: Literal["above", "below"]):
        super().__init__(f"boundary {alert} {side} threshold")
        self.alert = alert
        self.side = side

    @classmethod
    def build(cls, scenario: Scenario, setup: Setup) -> list[Check]:
        boundary = scenario.boundary
        return [cls(boundary.alert, boundary.side)] if boundary is not None else []

    async def collect(self, run: RunView) -> BoundaryEvidence:
        entry = run.contract.get(self.alert)
        threshold = entry.threshold if entry else None
        window = measured_window(run)
        obs = BoundaryEvidence(
            alert=self.alert,
            side=self.side,
            threshold=threshold,
            window=(window.start, window.end) if window else None,
        )
        if threshold is None or window is None:
            return obs
        obs.query = threshold.signal.replace(
            WINDOW, format_duration(math.ceil(max(1.0, window.length)))
        )
        samples = await run.prometheus.instant(obs.query, at=window.end)
        values = [s.value for s in samples if not math.isnan(s.value)]
        obs.value = max(values) if values else None
        return obs

    @classmethod
    def judge(cls, evidence: BoundaryEvidence, ctx: JudgeContext) -> Judged:
        status, summary = judge_boundary(evidence, ctx)
        return Judged(status, summary, evidence)

    @classmethod
    def raw(cls, evidence: BoundaryEvidence) -> list[Raw]:
        threshold = evidence.threshold.model_dump(mode="json") if evidence.threshold else None
        return [
            Raw(
                "threshold signal",
                evidence.query,
                {"value": evidence.value, "threshold": threshold},
            )
        ]
