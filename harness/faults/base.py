"""The fault driver interface: apply, read back (prove it is in effect), remove, prove it gone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import anyio
import httpx

from harness.config import Target
from harness.errors import HarnessError
from harness.specs.faults import FaultBase
from harness.toxiproxy_client import ToxiproxyClient

if TYPE_CHECKING:
    from harness.workload.driver import WorkloadDriver


NEEDS_REBUILD = "needs_rebuild"
"""The `state` key a driver sets when its fault cannot be healed in place, or left the slot
untrustworthy for the next scenario although healed (a store restarted on a damaged block):
the slot must be rebuilt (the heal outcome's `needs_rebuild`)."""


class FaultNotInEffect(HarnessError):
    """Read-back could not show the fault in effect."""


class FaultStillPresent(HarnessError):
    """Read-back after removal still shows the fault."""


class ComponentProcess(Protocol):
    """A started component's process (harness.stack.process.ProcessRecord)."""

    pid: int

    def alive(self) -> bool: ...


class Stack(Protocol):
    """What a run asks of a local stack (harness.stack.stack.LocalStack, attached to a target's
    run directory): its components' processes, stopping and restarting one, and resetting the
    alerting state between scenarios. External targets have none."""

    def record(self, name: str) -> ComponentProcess: ...
    def stop_component(self, name: str) -> None: ...
    async def start_component(self, name: str) -> None: ...
    async def reset_alerting(self) -> float: ...


@dataclass
class FaultContext:
    """What drivers need to reach the target; `stack` only for a local stack."""

    target: Target
    toxiproxy: ToxiproxyClient
    http: httpx.AsyncClient
    stack: Stack | None = None
    workload: WorkloadDriver | None = None  # the scenario's, for workload faults


class FaultDriver(ABC):
    """One fault of one scenario, from injection to proven removal.

    `state` holds what healing needs beyond the spec (a deleted consumer's config, a pid);
    it is journaled before `apply`, so a later process can heal from the journal alone.
    """

    kind: ClassVar[str]
    spec_model: ClassVar[type[FaultBase]]
    through_toxiproxy: ClassVar[bool] = True

    def __init__(self, spec: Any, ctx: FaultContext, key: str, state: dict | None = None):
        self.spec = spec
        self.ctx = ctx
        self.key = key
        self.state: dict[str, Any] = dict(state or {})

    async def capable(self) -> str | None:
        """Whether the target can take this fault, checked in preflight before anything is
        injected: None when it can, else the reason (a missing hook, a refused toxic type)."""
        return None

    async def prepare(self) -> None:
        """Record in `state` whatever healing will need; no side effect on the target."""
        return

    @abstractmethod
    async def apply(self) -> None:
        """Inject the fault."""

    @abstractmethod
    async def read_back(self) -> dict[str, Any]:
        """Evidence that the fault is in effect; raise FaultNotInEffect otherwise."""

    async def hold(self, seconds: float) -> None:
        """Keep the fault in effect for `seconds` (flapping overrides this)."""
        await anyio.sleep(seconds)

    @abstractmethod
    async def remove(self) -> None:
        """Undo the fault the normal way."""

    @abstractmethod
    async def prove_gone(self) -> dict[str, Any]:
        """Evidence the fault is gone; raise FaultStillPresent otherwise."""

    async def fallback(self) -> None:
        """Last resort when `remove` fails or hangs: reset the whole Toxiproxy server."""
        await self.ctx.toxiproxy.reset()

    @property
    def needs_rebuild(self) -> bool:
        """Whether the fault left its slot unfit for the next scenario (set in `state` by a
        driver whose heal could not bring the target back, e.g. a damaged node that cannot
        rejoin, or whose healed target is not to be trusted, e.g. a store restarted on
        damage)."""
        return bool(self.state.get(NEEDS_REBUILD))

    def describe(self) -> str:
        return f"{self.kind} {self.key}"
