"""Scenario files: the model of one fault scenario and the loader for `scenarios/`.

A scenario is declarative YAML (faults with offsets, the workload, what must be observed).
The loader reports every problem in a file at once with its file, line and field path, and
refuses an ID used by two files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.config import Strict
from harness.durations import Duration
from harness.yamlfile import FileProblems, Problem, load_model

SCENARIO_ID = r"^(S[1-9]\d*|JS-\d{3}|NATS-\d{3}|PERF-\d{3}|[A-Z][A-Z0-9]*-\d{3})$"
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class FaultBase(Strict):
    """When a fault is applied and for how long (offsets from the start of the inject phase)."""

    start: Duration = Field(0.0, ge=0)
    duration: Duration = Field(gt=0)


class ToxicFault(FaultBase):
    """Any Toxiproxy toxic on a named proxy."""

    kind: Literal["toxic"]
    proxy: str
    type: Literal[
        "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"
    ]
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: Fraction = 1.0
    attributes: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    name: str | None = None

    @model_validator(mode="after")
    def _attributes_known(self) -> ToxicFault:
        allowed = TOXIC_ATTRIBUTES[self.type]
        unknown = sorted(set(self.attributes) - allowed)
        if unknown:
            raise ValueError(
                f"unknown attribute(s) {', '.join(unknown)} for toxic {self.type}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        if self.type == "slicer" and self.attributes.get("average_size", 1) <= 0:
            raise ValueError("slicer average_size must be > 0")
        return self


TOXIC_ATTRIBUTES: dict[str, set[str]] = {
    "latency": {"latency", "jitter"},
    "bandwidth": {"rate"},
    "slow_close": {"delay"},
    "timeout": {"timeout"},
    "reset_peer": {"timeout"},
    "slicer": {"average_size", "size_variation", "delay"},
    "limit_data": {"bytes"},
}


class ProxyDownFault(FaultBase):
    """The proxy disabled: new connections refused, live ones closed."""

    kind: Literal["proxy_down"]
    proxy: str


class FlapFault(FaultBase):
    """The proxy toggled down and up with a period; `down_fraction` of each period it is down."""

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


Fault = Annotated[
    ToxicFault
    | ProxyDownFault
    | FlapFault
    | RouterHookFault
    | JetStreamFault
    | ProcessFault
    | PoisonFault,
    Field(discriminator="kind"),
]


class WorkloadMix(Strict):
    """Fractions of each kind of decide request; they must add up to 1.

    `poison`: a request the router can never process (its tenant is not allowed); it is
    NAKed until max_deliver and then dead-lettered. `malformed`: schema-invalid; the router
    answers with an error and ACKs it.
    """

    valid: Fraction = 1.0
    poison: Fraction = 0.0
    malformed: Fraction = 0.0

    @model_validator(mode="after")
    def _sums_to_one(self) -> WorkloadMix:
        total = self.valid + self.poison + self.malformed
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"mix fractions must add up to 1, got {total:g}")
        return self


class Workload(Strict):
    """The decide requests the harness publishes during the whole run."""

    rate: Annotated[float, Field(gt=0, le=5000)] = 20.0
    mix: WorkloadMix = Field(default_factory=WorkloadMix)
    subject: str = "beamline.router.v1.decide"
    allowed_tenants: list[str] = Field(
        default_factory=lambda: ["tenant-a", "tenant-b"], min_length=1
    )
    poison_tenant: str = "tenant-blocked"
    drain: Duration = Field(
        20.0, gt=0, description="how long to wait for outcomes after publishing"
    )


class MetricExpectation(Strict):
    """A PromQL expression and how it must move during the fault (vs the run's own baseline)."""

    query: str
    window: Literal["fault", "recovery"] = "fault"
    moved: Literal["up", "down"] | None = None
    ratio_at_least: Annotated[float, Field(gt=0)] | None = None
    delta_above: float | None = None
    above: float | None = None
    below: float | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    recover_within: Duration | None = Field(None, gt=0)
    recover_tolerance: Annotated[float, Field(ge=0)] = 0.1

    @model_validator(mode="after")
    def _has_condition(self) -> MetricExpectation:
        conditions = (self.moved, self.ratio_at_least, self.delta_above, self.above, self.below)
        if all(c is None for c in conditions) and self.recover_within is None:
            raise ValueError(
                "needs a condition: moved, ratio_at_least, delta_above, above, below "
                "or recover_within"
            )
        return self


class AlertExpectation(Strict):
    fire: list[str] = Field(default_factory=list)
    forbid: list[str] = Field(default_factory=list)
    resolve_after_heal: bool = True
    settle_allowance: Duration = Field(
        0.0,
        ge=0,
        description="time the system under test needs after heal before the symptom stops "
        "(in-flight redeliveries, delayed ACKs); added to each alert's resolve budget",
    )

    @model_validator(mode="after")
    def _disjoint(self) -> AlertExpectation:
        both = sorted(set(self.fire) & set(self.forbid))
        if both:
            raise ValueError(f"alert(s) both expected and forbidden: {', '.join(both)}")
        return self


class DeliveryExpectation(Strict):
    lost: Annotated[int, Field(ge=0)] = 0
    max_duplicates_per_message: Annotated[int, Field(ge=0)] = 2
    unexpected: Annotated[int, Field(ge=0)] = 0
    poison_dead_lettered: bool = True


class PanelRef(Strict):
    dashboard: str
    panel: str


class Expectations(Strict):
    metrics: list[MetricExpectation] = Field(default_factory=list)
    alerts: AlertExpectation = Field(default_factory=AlertExpectation)
    delivery: DeliveryExpectation | None = Field(default_factory=DeliveryExpectation)
    dashboards: list[PanelRef] = Field(default_factory=list)


class PhaseTimeouts(Strict):
    """Deadlines per phase; `baseline` is also the baseline window's length."""

    preflight: Duration = Field(30.0, gt=0)
    baseline: Duration = Field(15.0, gt=0)
    inject: Duration = Field(15.0, gt=0)
    heal: Duration = Field(15.0, gt=0)
    recover: Duration = Field(60.0, gt=0)


class Scenario(Strict):
    """One fault scenario, as written in `scenarios/<id>.yaml`."""

    id: Annotated[str, Field(pattern=SCENARIO_ID)]
    aliases: list[str] = Field(default_factory=list)
    title: str = Field(min_length=1)
    description: str = ""
    related: list[str] = Field(default_factory=list)
    faults: list[Fault] = Field(min_length=1)
    workload: Workload = Field(default_factory=Workload)
    expect: Expectations = Field(default_factory=Expectations)
    timeouts: PhaseTimeouts = Field(default_factory=PhaseTimeouts)

    @property
    def exclusive(self) -> bool:
        """Needs a shared component to itself (a process fault takes NATS or the router away)."""
        return any(f.kind == "process" for f in self.faults)

    @property
    def fault_window(self) -> float:
        """Seconds from the first injection until the last fault ends."""
        return max(f.start + f.duration for f in self.faults)

    def proxies(self) -> set[str]:
        return {f.proxy for f in self.faults if hasattr(f, "proxy")}


def load_scenario(path: Path | str) -> Scenario:
    """One scenario file; every problem with its line and field."""
    return load_model(Scenario, path)


def load_scenarios(directory: Path | str) -> dict[str, tuple[Scenario, Path]]:
    """Every scenario file in `directory` by ID; all files' problems reported together."""
    directory = Path(directory)
    problems: list[Problem] = []
    found: dict[str, tuple[Scenario, Path]] = {}
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in files:
        try:
            scenario = load_scenario(path)
        except FileProblems as exc:
            problems += exc.problems
            continue
        if scenario.id in found:
            other = found[scenario.id][1]
            problems.append(
                Problem(
                    str(path),
                    _id_line(path),
                    "id",
                    f"scenario {scenario.id} is also defined in {other}",
                )
            )
            continue
        found[scenario.id] = (scenario, path)
    if problems:
        raise FileProblems(problems)
    return found


def _id_line(path: Path) -> int | None:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if re.match(r"^id\s*:", line):
            return number
    return None
