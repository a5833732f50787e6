"""A scenario on a target's clock: every production duration of the file, compressed.

Scenario files, the contract and the rules share one clock: production time. A profile divides
it (÷30 locally, ÷1 on staging); this module is the one place a scenario's durations are turned
into seconds on the target, so the dry run, the orchestrator and the evidence agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from harness.config import Profile

if TYPE_CHECKING:
    from harness.scenario import Scenario


@dataclass(frozen=True)
class FaultPlan:
    start_s: float
    duration_s: float


@dataclass(frozen=True)
class ScenarioPlan:
    """Seconds on the target's clock (wall-clock seconds of the run)."""

    factor: float
    faults: tuple[FaultPlan, ...]
    preflight_s: float
    baseline_s: float
    inject_s: float
    heal_s: float
    recover_s: float
    settle_s: float
    drain_s: float

    @property
    def fault_window_s(self) -> float:
        """From the first injection until the last fault ends."""
        return max(f.start_s + f.duration_s for f in self.faults)

    @property
    def total_s(self) -> float:
        """The longest the scenario can take once preflight passed."""
        return self.baseline_s + self.fault_window_s + self.heal_s + self.recover_s

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_for(scenario: Scenario, profile: Profile) -> ScenarioPlan:
    """`scenario` on `profile`'s clock."""
    t = scenario.timeouts
    return ScenarioPlan(
        factor=profile.time_compression,
        faults=tuple(
            FaultPlan(profile.compress(f.start), profile.compress(f.duration))
            for f in scenario.faults
        ),
        preflight_s=profile.deadline(t.preflight),
        baseline_s=profile.compress(t.baseline),
        inject_s=profile.deadline(t.inject),
        heal_s=profile.deadline(t.heal),
        recover_s=profile.deadline(t.recover),
        settle_s=profile.compress(scenario.expect.alerts.settle_allowance),
        drain_s=profile.compress(scenario.workload.drain),
    )
