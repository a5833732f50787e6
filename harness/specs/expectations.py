"""The expectation specs a scenario's `expect:` declares: metrics, alerts, dashboards and
delivery. Pure models; the checks in `harness.checks` observe and judge them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.config import Strict
from harness.durations import Duration


class MetricExpectation(Strict):
    """A PromQL expression and how it must behave in the fault (or recovery) window compared
    with the baseline window of the same run."""

    query: str = Field(min_length=1)
    window: Literal["fault", "recovery"] = "fault"
    moved: Literal["up", "down", "flat"] | None = None
    ratio_at_least: Annotated[float, Field(gt=0)] | None = None
    delta_above: float | None = None
    above: float | None = None
    below: float | None = None
    tolerance: Annotated[float, Field(ge=0)] = Field(
        0.1, description="`moved: flat`: allowed change, as a share of the baseline"
    )
    tolerance_abs: Annotated[float, Field(ge=0)] = Field(
        0.0, description="`moved: flat`: allowed change in absolute terms (for a zero baseline)"
    )
    labels: dict[str, str] = Field(default_factory=dict)
    recover_within: Duration | None = Field(None, gt=0)
    recover_tolerance: Annotated[float, Field(ge=0)] = 0.1

    @model_validator(mode="after")
    def _relative(self) -> MetricExpectation:
        relative = (self.moved, self.ratio_at_least, self.delta_above, self.recover_within)
        if all(c is None for c in relative):
            raise ValueError(
                "needs a condition relative to the baseline: moved, ratio_at_least, "
                "delta_above or recover_within (above/below only narrow one: a metric the "
                "workload also moves in the baseline proves nothing about the fault)"
            )
        if self.ratio_at_least is not None and self.above is None:
            raise ValueError(
                "ratio_at_least needs an absolute floor (above:): any ratio holds against a "
                "zero baseline"
            )
        return self

    @property
    def uses_low(self) -> bool:
        return self.moved == "down" or (
            self.moved is None and self.below is not None and self.above is None
        )


class ContractOverride(Strict):
    """What a scenario may change of an alert's contract (e.g. a slower-building signal)."""

    detect_within: Duration | None = Field(None, gt=0)
    resolve_within: Duration | None = Field(None, gt=0)
    why: str = Field(min_length=1, description="why this scenario deviates from the contract")


class AlertExpectation(Strict):
    fire: list[str] = Field(default_factory=list)
    forbid: list[str] = Field(default_factory=list)
    resolve_after_heal: bool = True
    fire_before_heal: bool = Field(
        True, description="an expected alert must fire while the fault is still in effect"
    )
    settle_allowance: Duration = Field(
        0.0,
        ge=0,
        description="time the system under test needs after heal before the symptom stops "
        "(in-flight redeliveries, delayed ACKs); added to each alert's resolve objective",
    )
    contract: dict[str, ContractOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _disjoint(self) -> AlertExpectation:
        both = sorted(set(self.fire) & set(self.forbid))
        if both:
            raise ValueError(f"alert(s) both expected and forbidden: {', '.join(both)}")
        unknown = sorted(set(self.contract) - set(self.fire))
        if unknown:
            raise ValueError(f"contract overrides for alerts not expected to fire: {unknown}")
        return self


Direction = Literal["up", "down", "flat", "any"]


class PanelExpectation(Strict):
    """A panel that must show the scenario's symptom."""

    dashboard: str
    panel: str
    move: Literal["up", "down"] = Field(
        "up", description="how the panel shows the symptom: some query moves this way"
    )
    queries: dict[str, Direction] = Field(
        default_factory=dict, description="per refId, how that query itself must move"
    )


class DeliveryExpectation(Strict):
    lost: Annotated[int, Field(ge=0)] = 0
    max_duplicates_per_message: Annotated[int, Field(ge=0)] = 2
    unexpected: Annotated[int, Field(ge=0)] = 0
    poison_dead_lettered: bool = True
    max_deliver_respected: bool = Field(
        True,
        description="each dead-lettered message was delivered max_deliver times first "
        "(the server's advisories say how often), and no valid message exhausted it",
    )
    valid_dead_lettered: bool = Field(
        False,
        description="valid messages may be dead-lettered after max_deliver (e.g. NAKed under "
        "backpressure until exhausted): accounted for, not lost, but no longer a failure",
    )
    usage_missing: Annotated[int, Field(ge=0)] = Field(
        0,
        description="decisions allowed to have no usage event (core NATS publishes into a "
        "connection that is silently dropping can vanish without an error)",
    )
    usage_events: bool = Field(
        False,
        description="every decision's usage event arrives, late if need be: what the router "
        "queued while NATS was away is flushed after the reconnect",
    )
