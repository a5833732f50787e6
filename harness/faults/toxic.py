"""Any Toxiproxy toxic on a named proxy, including the embedded server's NATS-protocol-aware
toxics (`nats_drop`, `nats_delay`), which real Toxiproxy lacks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from harness.errors import ToxiproxyError
from harness.faults.base import FaultBase, FaultDriver, FaultNotInEffect, FaultStillPresent

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

TOXIC_ATTRIBUTES: dict[str, set[str]] = {
    "latency": {"latency", "jitter"},
    "bandwidth": {"rate"},
    "slow_close": {"delay"},
    "timeout": {"timeout"},
    "reset_peer": {"timeout"},
    "slicer": {"average_size", "size_variation", "delay"},
    "limit_data": {"bytes"},
    "nats_drop": {"frames", "subject"},
    "nats_delay": {"frames", "subject", "delay", "jitter"},
}
EXTENSION_TOXICS = frozenset({"nats_drop", "nats_delay"})
"""Toxic types only the harness's embedded Toxiproxy-compatible server has."""
STRING_ATTRIBUTES = frozenset({"frames", "subject"})
NATS_FRAMES = ("ack", "nak", "term", "wpi", "acks", "msg")


class ToxicFault(FaultBase):
    """A Toxiproxy toxic. For the NATS-protocol-aware types `toxicity` is the probability per
    matching frame (they parse every frame and act on that share), not per connection."""

    kind: Literal["toxic"]
    proxy: str
    type: Literal[
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "nats_drop",
        "nats_delay",
    ]
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: Fraction = 1.0
    attributes: dict[str, int | str] = Field(default_factory=dict)
    scaled: list[str] = Field(
        default_factory=list,
        description="attributes (milliseconds) that are production time, compressed by the "
        "target's profile like the router's own timers (e.g. a delay that must outlast "
        "ack_wait); the others are the network's behaviour and apply as written",
    )
    name: str | None = None

    @field_validator("attributes")
    @classmethod
    def _attributes_known(
        cls, attributes: dict[str, int | str], info: ValidationInfo
    ) -> dict[str, int | str]:
        kind = info.data.get("type")
        if kind is None:
            return attributes
        allowed = TOXIC_ATTRIBUTES[kind]
        unknown = sorted(set(attributes) - allowed)
        if unknown:
            raise ValueError(
                f"unknown attribute(s) {', '.join(unknown)} for toxic {kind}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        for key, value in attributes.items():
            if key in STRING_ATTRIBUTES and not isinstance(value, str):
                raise ValueError(f"{key} must be a string")
            if key not in STRING_ATTRIBUTES and (isinstance(value, str) or value < 0):
                raise ValueError(f"{key} must be an integer >= 0, got {value!r}")
        frames = attributes.get("frames")
        if frames is not None and frames not in NATS_FRAMES:
            raise ValueError(f"frames must be one of {', '.join(NATS_FRAMES)}")
        return attributes

    @model_validator(mode="after")
    def _consistent(self) -> ToxicFault:
        not_ms = sorted(a for a in self.scaled if not isinstance(self.attributes.get(a), int))
        if not_ms:
            raise ValueError(f"scaled names attributes that are not set as integers: {not_ms}")
        if self.type == "slicer" and self.attributes.get("average_size", 1) <= 0:
            raise ValueError("slicer average_size must be > 0")
        return self

    @property
    def extension(self) -> bool:
        return self.type in EXTENSION_TOXICS

    def attributes_for(self, compress: Callable[[float], float]) -> dict[str, int | str]:
        """The attributes as applied on a target whose clock is `compress`."""
        return {
            k: max(1, round(compress(v))) if k in self.scaled and isinstance(v, int) else v
            for k, v in self.attributes.items()
        }


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
