"""A proxy toggled down and up on a period: connections that keep breaking and coming back."""

from __future__ import annotations

import time
from typing import Any

import anyio

from harness.faults.proxy_down import ProxyDownDriver
from harness.specs.faults import FlapFault


class FlapDriver(ProxyDownDriver):
    kind = "flap"
    spec_model = FlapFault
    spec: FlapFault  # type: ignore[assignment]

    async def hold(self, seconds: float) -> None:
        """Down for `down_fraction` of each period, up for the rest, until `seconds` pass."""
        period = self.spec.period
        down = period * self.spec.down_fraction
        end = time.monotonic() + seconds
        cycles = 0
        while True:
            # The first down phase started in apply().
            await anyio.sleep(max(0.0, min(down, end - time.monotonic())))
            if time.monotonic() >= end:
                break
            await self.ctx.toxiproxy.set_enabled(self.spec.proxy, True)
            await anyio.sleep(max(0.0, min(period - down, end - time.monotonic())))
            if time.monotonic() >= end:
                break
            await self.ctx.toxiproxy.set_enabled(self.spec.proxy, False)
            cycles += 1
        self.state["cycles"] = cycles + 1

    async def read_back(self) -> dict[str, Any]:
        evidence = await super().read_back()
        return {**evidence, "period_s": self.spec.period, "down_fraction": self.spec.down_fraction}
