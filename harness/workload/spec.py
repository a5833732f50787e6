"""The workload's spec: the decide requests a scenario publishes, as its YAML declares them.

No network client is imported here: a scenario loads its workload spec without NATS or HTTP.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.config import Strict
from harness.durations import Duration

Kind = Literal["valid", "poison", "malformed", "http"]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


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


class WorkloadSpec(Strict):
    """The decide requests the harness publishes during the whole run. The rate is per second
    of the target's clock (rates and thresholds are never compressed)."""

    rate: Annotated[float, Field(gt=0, le=5000)] = 20.0
    mix: WorkloadMix = Field(default_factory=WorkloadMix)
    subject: str = "beamline.router.v1.decide"
    allowed_tenants: list[str] = Field(
        default_factory=lambda: ["tenant-a", "tenant-b"], min_length=1
    )
    poison_tenant: str = "tenant-blocked"
    http_rate: Annotated[float, Field(ge=0, le=2000)] = Field(
        0.0,
        description="synchronous decide requests per second to the router's POST /decide "
        "(the path that keeps answering while NATS is away, and queues its NATS publishes)",
    )
    usage_subject: str = "beamline.usage.v1.metered"
    drain: Duration = Field(
        10 * 60.0, gt=0, description="how long to wait for outcomes after publishing (production)"
    )
