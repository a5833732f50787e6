"""The fault driver interface: apply, read back (prove it is in effect), remove, prove it gone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio
import httpx

from harness.config import Target
from harness.toxiproxy_client import ToxiproxyClient


class FaultNotInEffect(RuntimeError):
    """Read-back could not show the fault in effect."""


class FaultStillPresent(RuntimeError):
    """Read-back after removal still shows the fault."""


@dataclass
class FaultContext:
    """What drivers need to reach the target; `stack` only for a local stack."""

    target: Target
    toxiproxy: ToxiproxyClient
    http: httpx.AsyncClient
    stack: Any = None  # harness.stack.stack.LocalStack; typed loosely to keep the import one-way
    workload: Any = None  # the scenario's harness.workload.Workload, for workload faults


class FaultDriver(ABC):
    """One fault of one scenario, from injection to proven removal.

    `state` holds what healing needs beyond the spec (a deleted consumer's config, a pid);
    it is journaled before `apply`, so a later process can heal from the journal alone.
    """

    kind: ClassVar[str]

    def __init__(self, spec: Any, ctx: FaultContext, key: str, state: dict | None = None):
        self.spec = spec
        self.ctx = ctx
        self.key = key
        self.state: dict[str, Any] = dict(state or {})

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

    def describe(self) -> str:
        return f"{self.kind} {self.key}"
