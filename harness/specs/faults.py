"""The fault specs a scenario's `faults:` declares, one model per kind, and their union. Pure
models; the drivers in `harness.faults` apply, read back and heal them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from harness.config import Strict
from harness.durations import Duration


class FaultBase(Strict):
    """When a fault is applied and for how long: offsets from the start of the inject phase,
    in production time (the target's profile compresses them like the rules)."""

    start: Duration = Field(0.0, ge=0)
    duration: Duration = Field(gt=0)
    why: str | None = Field(
        None,
        description="why this fault is not driven through Toxiproxy (required for kinds that "
        "are not: the wire should express a fault wherever it can)",
    )


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


class ProxyDownFault(FaultBase):
    """The proxy disabled: new connections refused, live ones closed."""

    kind: Literal["proxy_down"]
    proxy: str


class FlapFault(FaultBase):
    """The proxy toggled down and up with a period; `down_fraction` of each period it is down.
    The period is the network's behaviour and is not time-compressed."""

    kind: Literal["flap"]
    proxy: str
    period: Duration = Field(gt=0)
    down_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5


class HookFault(Strict):
    """The router fault hook's own shape: error (with a reason), timeout, or delay (ms)."""

    mode: Literal["error", "timeout", "delay"]
    reason: str | None = None
    ms: Annotated[int, Field(ge=0)] | None = None


class RouterHookFault(FaultBase):
    """A fault set in the router's fault hook, for what a network fault cannot target.

    Same shape as the hook's API: `mode` error/timeout/delay, or intermittent with a
    `probability` and the inner `fault` it injects that often.
    """

    kind: Literal["router_hook"]
    operation: Literal["connect", "publish", "publish_with_ack", "ack", "nak", "subscribe"]
    mode: Literal["error", "timeout", "delay", "intermittent"]
    reason: str | None = None
    ms: Annotated[int, Field(ge=0)] | None = None
    probability: Fraction | None = None
    fault: HookFault | None = None

    @model_validator(mode="after")
    def _mode_fields(self) -> RouterHookFault:
        if self.mode == "delay" and self.ms is None:
            raise ValueError("mode delay needs ms")
        if self.mode == "intermittent" and (self.probability is None or self.fault is None):
            raise ValueError("mode intermittent needs probability and fault")
        return self

    def hook_body(self) -> dict:
        """The JSON the router's `POST /faults` takes."""
        body = self.model_dump(
            include={"mode", "reason", "ms", "probability", "fault"}, exclude_none=True
        )
        return {"op": self.operation, **body}

    def supplied_labels(self) -> dict[str, str]:
        """Label values this fault hands the router (a check on them would be tautological)."""
        reason = self.reason or (self.fault.reason if self.fault else None)
        if self.mode == "timeout" or (self.fault and self.fault.mode == "timeout"):
            reason = reason or "timeout"
        return {"reason": reason} if reason else {}


class JetStreamFault(FaultBase):
    """A JetStream admin action against the router's stream or consumer, undone on heal."""

    kind: Literal["jetstream"]
    action: Literal["delete_consumer"]
    stream: str = "router-stream"
    consumer: str = "router-decide-consumer"


class ProcessFault(FaultBase):
    """A signal to a local-stack component; refused against an external target."""

    kind: Literal["process"]
    component: Literal["nats", "router"]
    action: Literal["stop", "pause", "kill"]


class PoisonFault(FaultBase):
    """Poison messages injected into the workload: for the fault's duration this fraction
    of requests has a tenant the router can never accept (NAKed to max_deliver, then DLQ)."""

    kind: Literal["poison"]
    fraction: Annotated[float, Field(gt=0.0, le=1.0)]


# --- cluster faults: one node of a cluster target, or its groups -------------------------------

DEFAULT_STREAM = "router-stream"
"""The router's decide stream: the stream whose leader a role names unless a fault says."""

NODE_KILL_WHY = (
    "a crashed server process (its state recovered from disk on restart) is not a network "
    "fault: no proxy can make a nats-server lose its memory"
)
NODE_PAUSE_WHY = (
    "a frozen server process (a GC stall, a stopped VM) keeps its sockets open and answers "
    "nothing; a proxy can drop or delay bytes but cannot stop the process's own timers"
)
STEPDOWN_WHY = (
    "a leader stepdown is an administrative request to the JetStream API (what an operator or "
    "a rolling upgrade does); nothing on the wire expresses it"
)
STORAGE_WHY = (
    "damaged bytes on a node's disk are not a network fault: a proxy sees only what is sent, "
    "never what a server reads back from its own block files"
)


class NodeFault(FaultBase):
    """A fault aimed at one node of a cluster target, chosen when it is applied."""

    node: str = Field(
        "stream_leader",
        description="the node: a role resolved at apply time from /jsz (stream_leader, "
        "follower, meta_leader) or a node name of the target's topology (n1, n2, ...)",
    )
    stream: str = Field(
        DEFAULT_STREAM, description="the stream whose leader or follower a role means"
    )


class NodeKillFault(NodeFault):
    """SIGKILL one node of the cluster; heal starts it again (same config, same store)."""

    kind: Literal["node_kill"]
    why: str | None = Field(
        NODE_KILL_WHY, description="why this fault is not driven through Toxiproxy"
    )


class NodePauseFault(NodeFault):
    """SIGSTOP one node of the cluster; heal sends SIGCONT."""

    kind: Literal["node_pause"]
    why: str | None = Field(
        NODE_PAUSE_WHY, description="why this fault is not driven through Toxiproxy"
    )


class PartitionFault(NodeFault):
    """Isolate one node (a role resolved at apply time, or a name) from the rest of the
    cluster: its route proxies disabled both ways."""

    kind: Literal["partition"]


class StepdownFault(FaultBase):
    """Ask a stream's leader (or the meta leader) to step down; a new one is elected."""

    kind: Literal["leader_stepdown"]
    group: Literal["stream", "meta"] = "stream"
    stream: str = Field(DEFAULT_STREAM, description="the stream, for group: stream")
    why: str | None = Field(
        STEPDOWN_WHY, description="why this fault is not driven through Toxiproxy"
    )


class StorageDamageFault(NodeFault):
    """Stop a node, damage its newest block file of `stream`, start it again (at once, or on
    heal)."""

    kind: Literal["storage_damage"]
    node: str = Field("follower", description="the damaged node: a role or a node name")
    damage: Literal["truncate", "bitflip"] = "bitflip"
    bits: int = Field(8, ge=1, le=4096, description="bits flipped (damage: bitflip)")
    keep: float = Field(
        0.5, ge=0.0, lt=1.0, description="share of the file kept (damage: truncate)"
    )
    seed: int | None = Field(None, description="random seed of the flipped positions")
    restart: Literal["at_once", "at_heal"] = Field(
        "at_once",
        description="start the damaged node again right after the damage, or keep it stopped "
        "for the fault's duration and start it on heal (its absence is then seen first)",
    )
    why: str | None = Field(
        STORAGE_WHY, description="why this fault is not driven through Toxiproxy"
    )


Fault = Annotated[
    ToxicFault
    | ProxyDownFault
    | FlapFault
    | RouterHookFault
    | JetStreamFault
    | ProcessFault
    | PoisonFault
    | NodeKillFault
    | NodePauseFault
    | PartitionFault
    | StepdownFault
    | StorageDamageFault,
    Field(discriminator="kind"),
]
"""Any scenario fault, tagged by `kind` (each kind's driver is in `harness.faults.DRIVERS`)."""
