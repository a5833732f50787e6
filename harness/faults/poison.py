"""Poison messages in the workload for the fault's duration (MaxDeliver exhaustion, DLQ growth).

Nothing changes on the target, so there is nothing to heal after a crash: a dead run's
workload is gone with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent
from harness.specs.faults import PoisonFault

if TYPE_CHECKING:
    from harness.workload.driver import WorkloadDriver


class PoisonDriver(FaultDriver):
    kind = "poison"
    spec_model = PoisonFault
    through_toxiproxy = False
    spec: PoisonFault

    async def capable(self) -> str | None:
        return None if self.ctx.workload is not None else "poison faults need the workload"

    def _workload(self) -> WorkloadDriver:
        if self.ctx.workload is None:
            raise FaultNotInEffect("poison faults need the scenario's workload")
        return self.ctx.workload

    async def apply(self) -> None:
        self._workload().set_poison_override(self.spec.fraction)

    async def read_back(self) -> dict[str, Any]:
        fraction = self._workload().poison_fraction()
        if fraction != self.spec.fraction:
            raise FaultNotInEffect(f"workload poison fraction is {fraction}")
        return {"poison_fraction": fraction}

    async def remove(self) -> None:
        """Stop injecting, then wait (bounded by the runner's timeout) until the poison already
        published has been dead-lettered: the fault's effect ends there, not at the switch."""
        workload = self.ctx.workload
        if workload is None:
            return
        workload.set_poison_override(None)
        while workload.poison_in_flight():  # noqa: ASYNC110 - the ledger is plain state
            await anyio.sleep(0.2)

    async def prove_gone(self) -> dict[str, Any]:
        if self.ctx.workload is None:
            return {"workload": "gone with its run"}
        fraction = self.ctx.workload.poison_fraction()
        if fraction != self.ctx.workload.spec.mix.poison:
            raise FaultStillPresent(f"workload poison fraction still {fraction}")
        return {"poison_fraction": fraction}

    async def fallback(self) -> None:
        await self.remove()
