"""After each scenario: is its slot still fit for the next one? If not, rebuild it (a local
slot) or say so (a remote target), so one failure does not cascade into the scenarios after it.

The observations are what preflight reads (every endpoint's probe, the proxies clean), plus,
for a cluster slot, every node answering with all its routes, a meta leader, and every stream
with a leader and current replicas; plus what the scenario's heals said (a fault not healed, or
one whose heal says the slot needs rebuilding) and the fault journal. `decide` is the pure
judge: observations → nothing to do, rebuild, or report only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import anyio
import structlog

from harness.adapters import Adapters
from harness.config import Target
from harness.errors import HarnessError, describe
from harness.evidence.record import HealOutcome, ScenarioResult, SlotCheck
from harness.faults.base import FaultContext
from harness.faults.cluster import snapshot
from harness.faults.journal import Journal
from harness.probes import ProbeResult

log = structlog.get_logger("slots")

GRACE_S = 10.0
"""How long a slot may take to settle after a scenario before it counts as unhealthy (a probe
or a cluster view that can clear by itself: a replica catching up, a router reconnecting)."""
CLUSTER_GRACE_S = 20.0
POLL_S = 1.0

Action = Literal["none", "rebuild", "report"]


@runtime_checkable
class Rebuildable(Protocol):
    """A local slot's stack (harness.stack.stack.LocalStack)."""

    async def rebuild(self, timeout: float = ...) -> float: ...


@dataclass(frozen=True)
class SlotObservations:
    """What the slot looked like after a scenario."""

    probes: list[ProbeResult] = field(default_factory=list)
    cluster: list[str] | None = None
    """Why the cluster is not whole (empty: whole); None: not a cluster slot."""
    proxies: list[str] = field(default_factory=list)
    """Proxies still faulted (a toxic on it, or disabled), or why Toxiproxy could not say."""
    heals: list[HealOutcome] = field(default_factory=list)
    """The scenario's heal outcomes."""
    journal: list[str] = field(default_factory=list)
    """Fault journal entries still on the slot (faults not proven gone)."""
    local: bool = True
    """A local slot the run can rebuild; False for a remote target."""


@dataclass(frozen=True)
class SlotDecision:
    action: Action
    reasons: list[str]
    settled: bool
    """True when waiting cannot change it: healthy, or a heal said so (a fault not healed, a
    slot that needs rebuilding); False while only probes or the cluster view disagree."""


def decide(obs: SlotObservations) -> SlotDecision:
    """Observations → nothing to do (healthy), rebuild (a local slot) or report (a remote
    one), with every reason."""
    lasting = [
        f"fault {h.key} ({h.kind}): its heal says the slot needs rebuilding"
        + (f" ({h.errors[-1]})" if h.errors else "")
        for h in obs.heals
        if h.needs_rebuild
    ]
    lasting += [
        f"fault {h.key} ({h.kind}) not healed" + (f": {h.errors[-1]}" if h.errors else "")
        for h in obs.heals
        if not h.healed and not h.needs_rebuild
    ]
    named = {h.key for h in obs.heals if not h.healed or h.needs_rebuild}
    lasting += [f"fault {key} still in the journal" for key in obs.journal if key not in named]
    passing = [f"{p.name}: {p.detail}" for p in obs.probes if not p.ok]
    passing += [f"cluster: {problem}" for problem in obs.cluster or []]
    passing += [f"toxiproxy: {problem}" for problem in obs.proxies]
    reasons = lasting + passing
    if not reasons:
        return SlotDecision("none", [], settled=True)
    return SlotDecision("rebuild" if obs.local else "report", reasons, settled=bool(lasting))


async def faulted_proxies(adapters: Adapters) -> list[str]:
    """Proxies with a toxic or disabled (nothing of a healed scenario should be left)."""
    try:
        proxies = await adapters.toxiproxy.proxies()
    except HarnessError as exc:
        return [f"cannot list proxies: {exc}"]
    faulted = []
    for name, proxy in sorted(proxies.items()):
        toxics = [t.get("name") for t in proxy.get("toxics") or []]
        if toxics:
            faulted.append(f"proxy {name} still has toxics {toxics}")
        if not proxy.get("enabled", True):
            faulted.append(f"proxy {name} is disabled")
    return faulted


class SlotKeeper:
    """Keeps one slot fit between scenarios: checks it after each, rebuilds it when needed."""

    def __init__(
        self,
        target: Target,
        adapters: Adapters,
        ctx: FaultContext,
        journal: Journal,
        stack: object | None,
        *,
        grace: float | None = None,
        rebuild_timeout: float | None = None,
    ):
        self.target = target
        self.adapters = adapters
        self.ctx = ctx
        self.journal = journal
        # only a local slot's own stack is rebuilt; a remote target is reported
        self.stack = stack if target.kind == "local" and isinstance(stack, Rebuildable) else None
        self.clustered = target.topology.kind == "cluster"
        self.grace = grace if grace is not None else CLUSTER_GRACE_S if self.clustered else GRACE_S
        self.rebuild_timeout = rebuild_timeout

    async def observe(self, heals: list[HealOutcome]) -> SlotObservations:
        cluster = (await snapshot(self.ctx)).whole_problems() if self.clustered else None
        return SlotObservations(
            probes=await self.adapters.health(),
            cluster=cluster,
            proxies=await faulted_proxies(self.adapters),
            heals=heals,
            journal=[e["key"] for e in self.journal.entries()],
            local=self.stack is not None,
        )

    async def after(self, result: ScenarioResult) -> SlotCheck:
        """Check the slot after `result`'s scenario; rebuild it if it is unfit (a local slot).
        Never raises; a rebuild is not cancelled half-way (bounded by its timeout)."""
        started, at = time.monotonic(), time.time()
        heals = [f.heal for f in result.faults if f.heal is not None]
        deadline = anyio.current_time() + self.grace
        while True:
            try:
                decision = decide(await self.observe(heals))
            except Exception as exc:  # an observation that failed is itself a problem
                decision = SlotDecision(
                    "rebuild" if self.stack is not None else "report",
                    [f"the slot could not be checked: {describe(exc)}"],
                    settled=False,
                )
            if decision.settled or anyio.current_time() >= deadline:
                break
            await anyio.sleep(POLL_S)
        check = SlotCheck(
            slot=self.target.name,
            after_scenario=result.scenario_id,
            at=at,
            healthy=decision.action == "none",
            problems=decision.reasons,
            check_seconds=round(time.monotonic() - started, 2),
        )
        if decision.action == "report":
            check.action = "not_rebuildable"
            log.warning("slot_unhealthy", slot=check.slot, problems=check.problems)
        elif decision.action == "rebuild":
            await self._rebuild(check)
        return check

    async def _rebuild(self, check: SlotCheck) -> None:
        assert self.stack is not None
        log.warning("slot_rebuild", slot=check.slot, after=check.after_scenario, why=check.problems)
        started = time.monotonic()
        with anyio.CancelScope(shield=True):
            try:
                if self.rebuild_timeout is None:  # the stack's own bound
                    await self.stack.rebuild()
                else:
                    await self.stack.rebuild(self.rebuild_timeout)
            except Exception as exc:  # StackError or anything else: the slot is unusable
                check.action, check.error = "rebuild_failed", describe(exc)
            else:
                check.action = "rebuilt"
                # A fresh slot holds none of the faults its journal still lists.
                check.journal_cleared = [e["key"] for e in self.journal.entries()]
                for key in check.journal_cleared:
                    self.journal.remove(key)
        check.rebuild_seconds = round(time.monotonic() - started, 2)
        if check.action == "rebuilt":
            log.info("slot_rebuilt", slot=check.slot, seconds=check.rebuild_seconds)
        else:
            log.error("slot_rebuild_failed", slot=check.slot, error=check.error)
