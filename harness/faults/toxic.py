"""Any Toxiproxy toxic on a named proxy."""

from __future__ import annotations

from typing import Any

from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent
from harness.scenario import ToxicFault


class ToxicDriver(FaultDriver):
    kind = "toxic"
    spec: ToxicFault

    @property
    def name(self) -> str:
        """Our own name, so removal never touches a toxic someone else added."""
        return self.spec.name or f"harness_{self.key}"

    async def apply(self) -> None:
        await self.ctx.toxiproxy.add_toxic(
            self.spec.proxy,
            name=self.name,
            type=self.spec.type,
            stream=self.spec.stream,
            toxicity=self.spec.toxicity,
            attributes=dict(self.spec.attributes),
        )

    async def _find(self) -> dict[str, Any] | None:
        toxics = await self.ctx.toxiproxy.toxics(self.spec.proxy)
        return next((t for t in toxics if t["name"] == self.name), None)

    async def read_back(self) -> dict[str, Any]:
        toxic = await self._find()
        if toxic is None:
            raise FaultNotInEffect(f"toxic {self.name} not on proxy {self.spec.proxy}")
        wrong = {
            k: (v, toxic["attributes"].get(k))
            for k, v in self.spec.attributes.items()
            if toxic["attributes"].get(k) != v
        }
        if toxic["type"] != self.spec.type or toxic["stream"] != self.spec.stream or wrong:
            raise FaultNotInEffect(f"toxic {self.name} differs from the scenario: {toxic}")
        return {"proxy": self.spec.proxy, "toxic": toxic}

    async def remove(self) -> None:
        if await self._find() is not None:
            await self.ctx.toxiproxy.remove_toxic(self.spec.proxy, self.name)

    async def prove_gone(self) -> dict[str, Any]:
        toxics = await self.ctx.toxiproxy.toxics(self.spec.proxy)
        if any(t["name"] == self.name for t in toxics):
            raise FaultStillPresent(f"toxic {self.name} still on proxy {self.spec.proxy}")
        return {"proxy": self.spec.proxy, "toxics_left": [t["name"] for t in toxics]}
