"""A scenario on a target's clock: every production duration of the file, compressed.

Scenario files, the contract and the rules share one clock: production time. A profile divides
it (÷30 locally, ÷1 on staging); this module is the one place a scenario's durations are turned
into seconds on the target, so the dry run, the orchestrator and the evidence agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from harness.config import Profile
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.config import Target
    from harness.scenario import Scenario


class _Plan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FaultPlan(_Plan):
    """When one fault starts after the baseline, and how long it is held (target seconds)."""

    start_s: float
    duration_s: float


class ScenarioPlan(_Plan):
    """Seconds on the target's clock (wall-clock seconds of the run); the evidence keeps it as
    each scenario's `plan`."""

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


def plan_for(scenario: Scenario, profile: Profile) -> ScenarioPlan:
    """`scenario` on `profile`'s clock."""
    t = scenario.timeouts
    return ScenarioPlan(
        factor=profile.time_compression,
        faults=tuple(
            FaultPlan(start_s=profile.compress(f.start), duration_s=profile.compress(f.duration))
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


class TopologyMismatch(HarnessError):
    """A scenario needs a NATS topology (single, cluster) that no slot of the run has."""


def fits(scenario: Scenario, target: Target) -> bool:
    """Whether the target runs the NATS topology the scenario needs (single server, cluster)."""
    return scenario.topology == target.topology.kind


def unplaceable(scenarios: list[Scenario], targets: list[Target]) -> list[str]:
    """One line per scenario no target of the run can take (its topology is on no slot)."""
    kinds = sorted({t.topology.kind for t in targets})
    return [
        f"{s.id} needs a {s.topology} NATS target; this run's slots are {', '.join(kinds)} "
        + (
            "(start a cluster slot beside the others: harness up --cluster-slots 1; or only "
            "cluster slots: harness up --nats-cluster 3)"
            if s.topology == "cluster"
            else "(start a single-node slot: harness up)"
        )
        for s in scenarios
        if not any(fits(s, t) for t in targets)
    ]


AUTO_CLUSTER_SLOTS = 3
"""Cluster slots `harness up --slots auto` adds beside the single-node ones: the cluster
scenarios (about 12 minutes of scenario time, with CL-009's restarts) end within the
single-node catalogue's time on three; on two they were the catalogue's longest part (6m54s
of a 7m09s run). A slot's processes mostly wait on timers and the network: with five
single-node slots and two cluster slots the load average stayed near 1.2 on two cores."""


def auto_cluster_slots(single_slots: int) -> int:
    """Cluster slots to add to `single_slots` single-node ones when the slot count is `auto`:
    AUTO_CLUSTER_SLOTS, or one on a machine that holds at most two slots."""
    return AUTO_CLUSTER_SLOTS if single_slots > 2 else 1


def slot_plan(
    scenarios: list[Scenario], profile: Profile, topologies: list[str]
) -> tuple[list[list[Scenario]], list[Scenario]]:
    """Which scenario each slot runs, as `harness run` hands them out: longest first, each to
    the slot of its topology that is free first (times are each scenario's longest on the
    target's clock); and the scenarios no slot can take."""
    ends = [0.0] * len(topologies)
    plan: list[list[Scenario]] = [[] for _ in topologies]
    left = []
    for s in sorted(scenarios, key=lambda s: -plan_for(s, profile).total_s):
        mine = [i for i, kind in enumerate(topologies) if kind == s.topology]
        if not mine:
            left.append(s)
            continue
        k = min(mine, key=lambda i: ends[i])
        plan[k].append(s)
        ends[k] += plan_for(s, profile).total_s
    return plan, left
