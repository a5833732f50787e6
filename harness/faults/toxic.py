"""Any Toxiproxy toxic on a named proxy, including the embedded server's NATS-protocol-aware
toxics (`nats_drop`, `nats_delay`), which real Toxiproxy lacks."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from harness.errors import ToxiproxyError
from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent
from harness.specs.faults import ToxicFault


class ToxicDriver(FaultDriver):
    kind = "toxic"
    spec_model = ToxicFault
    spec: ToxicFault

    @property
    def name(self) -> str:
        """Our own name, so removal never touches a toxic someone else added."""
        return self.spec.name or f"harness_{self.key}"

    async def capable(self) -> str | None:
        """The proxy exists, and the server accepts this toxic type with these attributes:
        tried on a scratch proxy of our own (disabled, so it binds nothing), then deleted."""
        try:
            proxies = await self.ctx.toxiproxy.proxies()
        except ToxiproxyError as exc:
            return str(exc)
        if self.spec.proxy not in proxies:
            return f"Toxiproxy at {self.ctx.toxiproxy.url} has no proxy {self.spec.proxy!r}"
        scratch = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:8]}"
        try:
            await self.ctx.toxiproxy.create_proxy(scratch, "127.0.0.1:0", "127.0.0.1:9", False)
        except ToxiproxyError as exc:
            return f"cannot create a scratch proxy to try the toxic on: {exc}"
        try:
            await self.ctx.toxiproxy.add_toxic(
                scratch,
                name="probe",
                type=self.spec.type,
                stream=self.spec.stream,
                toxicity=0.0,
                attributes=self._attributes(),
            )
        except ToxiproxyError as exc:
            needs = (
                " (a NATS-protocol-aware toxic: it needs the harness's embedded "
                "Toxiproxy-compatible server, `harness toxiproxy-server`)"
                if self.spec.extension
                else ""
            )
            return f"Toxiproxy refused toxic type {self.spec.type!r}{needs}: {exc}"
        finally:
            # a scratch proxy binds nothing; `harness heal` removes any stray one
            with contextlib.suppress(ToxiproxyError):
                await self.ctx.toxiproxy.delete_proxy(scratch)
        return None

    async def apply(self) -> None:
        await self.ctx.toxiproxy.add_toxic(
            self.spec.proxy,
            name=self.name,
            type=self.spec.type,
            stream=self.spec.stream,
            toxicity=self.spec.toxicity,
            attributes=self._attributes(),
        )

    def _attributes(self) -> dict[str, int | str]:
        return self.spec.attributes_for(self.ctx.target.profile.compress)

    async def _find(self) -> dict[str, Any] | None:
        toxics = await self.ctx.toxiproxy.toxics(self.spec.proxy)
        return next((t for t in toxics if t["name"] == self.name), None)

    async def read_back(self) -> dict[str, Any]:
        toxic = await self._find()
        if toxic is None:
            raise FaultNotInEffect(f"toxic {self.name} not on proxy {self.spec.proxy}")
        wrong = {
            k: (v, toxic["attributes"].get(k))
            for k, v in self._attributes().items()
            if toxic["attributes"].get(k) != v
        }
        if toxic["type"] != self.spec.type or toxic["stream"] != self.spec.stream or wrong:
            raise FaultNotInEffect(f"toxic {self.name} differs from the scenario: {toxic}")
        return {"proxy": self.spec.proxy, "toxic": toxic}

    async def remove(self) -> None:
        toxic = await self._find()
        if toxic is not None:
            if "stats" in toxic:  # what the protocol-aware toxic did, read just before removal
                self.state["stats_at_removal"] = toxic["stats"]
            await self.ctx.toxiproxy.remove_toxic(self.spec.proxy, self.name)

    async def prove_gone(self) -> dict[str, Any]:
        toxics = await self.ctx.toxiproxy.toxics(self.spec.proxy)
        if any(t["name"] == self.name for t in toxics):
            raise FaultStillPresent(f"toxic {self.name} still on proxy {self.spec.proxy}")
        evidence = {"proxy": self.spec.proxy, "toxics_left": [t["name"] for t in toxics]}
        if "stats_at_removal" in self.state:
            evidence["stats_at_removal"] = self.state["stats_at_removal"]
        return evidence


SCRATCH_PREFIX = "harness-probe-"
"""Proxies the harness creates only to try a toxic type; never carry traffic."""
