"""Delivery invariants: nothing acked is lost, duplicates stay within the at-least-once bound,
nothing unexpected is answered, every poison message is dead-lettered — and, from the server's
own testimony (JetStream advisories and consumer info), no message was dead-lettered before
`max_deliver` deliveries and no valid message exhausted it, whatever the router's metrics say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from harness.checks.base import Check, JudgeContext, Judged, Raw, RunView, Setup
from harness.config import Strict
from harness.evidence.record import CheckEvidence, ScenarioResult, Status
from harness.workload.ledger import LedgerSummary, ServerView

if TYPE_CHECKING:
    from harness.scenario import Scenario


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
    exhausted_valid: Annotated[int, Field(ge=0)] = Field(
        0,
        description="valid messages allowed to exhaust max_deliver (per the server's "
        "advisories): a fault that drops deliveries at random exhausts one now and then by "
        "its own odds; the scenario says which",
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


class DeliveryEvidence(CheckEvidence):
    """The delivery invariants and whether poison was expected; the ledger judged is the
    scenario's `workload` record, kept there once (attached here, never written twice)."""

    expected: DeliveryExpectation | None = None
    poison_expected: bool | None = None
    ledger: LedgerSummary | None = Field(None, exclude=True)

    @property
    def server(self) -> ServerView:
        return self.ledger.server if self.ledger is not None else ServerView()


def judge_delivery(spec: DeliveryExpectation, obs: DeliveryEvidence) -> tuple[Status, str]:
    summary = obs.ledger
    if summary is None or not summary.acked:
        return "error", "no acked request in the ledger: the workload did not run"
    failures = []
    lost = summary.lost
    if not spec.poison_dead_lettered:  # the DLQ is expected to fail: poison is not "lost"
        lost -= summary.by_kind.get("poison", {}).get("lost", 0)
    if lost > spec.lost:
        failures.append(f"{lost} lost (allowed {spec.lost})")
    if summary.max_duplicates_per_message > spec.max_duplicates_per_message:
        failures.append(
            f"a message was answered {summary.max_duplicates_per_message} extra time(s) "
            f"(allowed {spec.max_duplicates_per_message})"
        )
    if summary.unexpected > spec.unexpected:
        failures.append(f"{summary.unexpected} unexpected answer(s)")
    if spec.poison_dead_lettered and obs.poison_expected:
        if not summary.poison_published:
            return "error", "poison messages expected but none was published"
        missing = summary.poison_published - summary.poison_dead_lettered
        if missing > 0:
            failures.append(
                f"{missing} of {summary.poison_published} poison message(s) not dead-lettered"
            )
    if spec.max_deliver_respected:
        failures += _max_deliver(spec, summary, obs.server)
    if spec.usage_events and summary.usage_missing > spec.usage_missing:
        failures.append(
            f"{summary.usage_missing} decision(s) never got their usage event (allowed "
            f"{spec.usage_missing}; queued publishes not flushed after the reconnect?), "
            f"e.g. {summary.usage_missing_ids[:3]}"
        )
    if not spec.valid_dead_lettered and summary.valid_dead_lettered:
        ids = summary.valid_dead_lettered
        failures.append(f"{len(ids)} valid message(s) dead-lettered, e.g. {ids[:3]}")
    shown = (
        f"{summary.acked} acked: {summary.answered} answered, "
        f"{summary.dead_lettered} dead-lettered, {summary.lost} lost, "
        f"{summary.duplicate_outcomes} duplicate(s)"
    )
    if failures:
        return "fail", "; ".join(failures)
    return "pass", shown


def _max_deliver(
    spec: DeliveryExpectation, summary: LedgerSummary, server: ServerView
) -> list[str]:
    """Dead-lettered messages against the server's max_deliver and delivery counts."""
    dead = summary.dead_lettered_messages
    if not dead and not summary.exhausted_valid:
        return []
    max_deliver = server.max_deliver
    if not max_deliver:
        return [f"the server's max_deliver is unknown: {server.error or 'no consumer info'}"]
    failures = []
    early = [m for m in dead if m.deliveries is not None and m.deliveries < max_deliver]
    if early:
        worst = min(early, key=lambda m: m.deliveries)
        failures.append(
            f"{len(early)} message(s) dead-lettered before max_deliver {max_deliver} "
            f"(e.g. {worst.request_id} after {worst.deliveries} deliveries, "
            f"per the {worst.source})"
        )
    unknown = [m for m in dead if m.deliveries is None]
    if unknown:
        failures.append(
            f"{len(unknown)} dead-lettered message(s) with no evidence of their delivery count "
            "(no server advisory, no count in the DLQ record)"
        )
    exhausted = len(summary.exhausted_valid)
    if exhausted > spec.exhausted_valid and not spec.valid_dead_lettered:
        allowed = f", allowed {spec.exhausted_valid}" if spec.exhausted_valid else ""
        failures.append(
            f"{exhausted} valid message(s) exhausted max_deliver (server advisory{allowed})"
        )
    return failures


class DeliveryCheck(Check):
    kind = "delivery"
    evidence_model = DeliveryEvidence
    expects = (
        "delivery",
        DeliveryExpectation | None,
        Field(default_factory=DeliveryExpectation),
    )

    def __init__(self, spec: DeliveryExpectation):
        super().__init__("delivery invariants")
        self.spec = spec

    @classmethod
    def build(cls, scenario: Scenario, setup: Setup) -> list[Check]:
        delivery = scenario.expect.delivery
        return [cls(delivery)] if delivery is not None else []

    async def collect(self, run: RunView) -> DeliveryEvidence:
        poison = run.scenario.workload.mix.poison > 0 or any(
            f.kind == "poison" for f in run.scenario.faults
        )
        return DeliveryEvidence(
            expected=self.spec,
            poison_expected=poison,
            ledger=run.ledger() if run.ledger else None,
        )

    @classmethod
    def judge(cls, evidence: DeliveryEvidence, ctx: JudgeContext) -> Judged:
        if evidence.expected is None or evidence.poison_expected is None:
            return Judged("error", "the evidence keeps no delivery expectation", evidence)
        status, summary = judge_delivery(evidence.expected, evidence)
        return Judged(status, summary, evidence)

    @classmethod
    def attach(cls, evidence: DeliveryEvidence, result: ScenarioResult) -> DeliveryEvidence:
        return evidence.model_copy(update={"ledger": result.workload})

    @classmethod
    def raw(cls, evidence: DeliveryEvidence) -> list[Raw]:
        ledger = evidence.ledger.model_dump(mode="json") if evidence.ledger else None
        return [Raw("delivery ledger", None, ledger)]

    @classmethod
    def upgrade(cls, older: dict[str, Any]) -> dict[str, Any]:
        """v2 kept a copy of the scenario's ledger here; the scenario's record holds it."""
        return {k: v for k, v in older.items() if k != "ledger"}
