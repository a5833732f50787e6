"""The typed record of a run: it *is* the evidence schema (`evidence.json` is its JSON form).

Checks, the orchestrator and the report writers share these models. Each check's evidence is
the typed model of its kind (`harness.checks.registry` maps a kind to it): the raw observations
its judge read, the expectation it judged them against, and what the judge derived, so a run
can be re-judged offline (`harness rejudge`). Dicts appear only at the file boundary.

v3 (this version) keeps each check's observations typed; v2 evidence (dict evidence, metric
recovery decided while polling) is upgraded on reading (`harness.evidence.bundle`), so reports
of older runs still build, but only v3 runs can be re-judged.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from harness.dataloss import DataLossOutcome
from harness.plan import ScenarioPlan
from harness.syncinterval import SyncIntervalApplied
from harness.workload.ledger import LedgerSummary

EVIDENCE_SCHEMA = "harness.evidence/v3"
OLDER_SCHEMAS = ("harness.evidence/v2",)
"""Evidence versions `read_evidence` still upgrades (for reports; they cannot be re-judged)."""

Status = Literal["pass", "fail", "error"]
Verdict = Literal["passed", "failed", "error", "interrupted"]
if TYPE_CHECKING:
    from harness.checks.registry import CheckKind
else:  # the registry imports this module; a kind it does not know fails the evidence's typing
    CheckKind = str


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Phase(StrEnum):
    """The phases of one scenario, in order."""

    PREFLIGHT = "preflight"
    BASELINE = "baseline"
    INJECT = "inject"
    OBSERVE = "observe"
    HEAL = "heal"
    RECOVER = "recover"
    VERDICT = "verdict"


PHASES: tuple[Phase, ...] = tuple(Phase)


class PhaseSpan(Model):
    """Wall-clock bounds of a phase (Unix seconds); `end` is None while it runs."""

    phase: Phase
    start: float
    end: float | None = None
    status: Literal["running", "ok", "timeout", "error", "interrupted", "skipped"] = "running"
    detail: str = ""


class HealOutcome(Model):
    """How one fault was removed, with the read-back that proves it."""

    key: str
    kind: str
    healed: bool
    method: Literal["remove", "fallback", "failed", "forgotten"]
    seconds: float
    at: float = Field(default_factory=time.time)
    evidence: dict[str, Any] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    needs_rebuild: bool = Field(
        False,
        description="the fault's heal says its slot cannot recover in place (a damaged node "
        "that could not rejoin): the slot is rebuilt before its next scenario",
    )


class SlotCheck(Model):
    """The slot's health after a scenario, and what the run did about it: nothing (healthy),
    rebuilt it (a local slot: torn down, brought up again from empty stores on the same
    ports), failed to rebuild it (its remaining scenarios are `error`), or only reported it
    (a remote target cannot be rebuilt)."""

    slot: str = Field(description="the target (slot) checked")
    after_scenario: str
    at: float = Field(default_factory=time.time)
    healthy: bool
    problems: list[str] = Field(
        default_factory=list, description="why it is not fit for the next scenario"
    )
    action: Literal["none", "rebuilt", "rebuild_failed", "not_rebuildable"] = "none"
    check_seconds: float = 0.0
    rebuild_seconds: float | None = None
    error: str | None = Field(None, description="why the rebuild failed")
    journal_cleared: list[str] = Field(
        default_factory=list,
        description="fault journal entries cleared: the rebuilt slot no longer holds them",
    )

    def headline(self) -> str:
        """One line for the run summary and the report."""
        why = "; ".join(self.problems) or "healthy"
        if self.action == "rebuilt":
            return (
                f"{self.slot} rebuilt after {self.after_scenario} in "
                f"{self.rebuild_seconds or 0:.1f}s ({why})"
            )
        if self.action == "rebuild_failed":
            error = (self.error or "").splitlines()[0] if self.error else "?"
            return (
                f"{self.slot} could NOT be rebuilt after {self.after_scenario}: {error} "
                f"(unhealthy: {why})"
            )
        if self.action == "not_rebuildable":
            return (
                f"{self.slot} left unhealthy by {self.after_scenario} (a remote target is not "
                f"rebuilt): {why}"
            )
        return f"{self.slot} healthy after {self.after_scenario}"


class FaultRecord(Model):
    """One fault of one scenario: plan (compressed seconds), read-back in effect, heal."""

    key: str
    kind: str
    spec: dict[str, Any]
    planned_start_s: float
    planned_duration_s: float
    applied_at: float | None = None
    read_back: dict[str, Any] | None = None
    error: str | None = None
    heal: HealOutcome | None = None


class CheckEvidence(Model):
    """The base of every check kind's evidence model."""


class CheckResult(Model):
    """One check's verdict, the reason in one line, everything it rests on (its kind's evidence
    model), and when it was observed (from its first observation to its verdict)."""

    name: str
    kind: CheckKind
    status: Status
    summary: str
    evidence: SerializeAsAny[CheckEvidence] = Field(None, validate_default=True)  # type: ignore[assignment]
    started_at: float | None = None
    ended_at: float | None = None

    @field_validator("evidence", mode="before")
    @classmethod
    def _of_its_kind(cls, value: Any, info: ValidationInfo) -> Any:
        """The JSON form (or nothing) → the evidence model of the check's kind."""
        if isinstance(value, CheckEvidence):
            return value
        kind = info.data.get("kind")
        if kind is None:
            raise ValueError("no valid check kind to type the evidence by")
        from harness.checks.registry import check_class  # the registry imports this module

        return check_class(kind).evidence_model.model_validate(value or {})


class ProbeRecord(Model):
    """One endpoint's health as preflight saw it (`harness status` shows the same)."""

    name: str
    url: str
    ok: bool
    detail: str


class ToxiproxyState(Model):
    """The toxics on each proxy and the proxies disabled, as preflight found them."""

    toxics: dict[str, list[str]] = Field(default_factory=dict)
    disabled: list[str] = Field(default_factory=list)


class PreflightRecord(Model):
    """What preflight found before anything was injected (a scenario that failed preflight
    keeps none: its phase error says why)."""

    probes: list[ProbeRecord] = Field(default_factory=list)
    toxiproxy: ToxiproxyState | None = None
    capabilities: str = Field(
        "", description="that every fault of the scenario is possible on this target"
    )
    active_alerts: list[str] = Field(
        default_factory=list, description="the scenario's named alerts still active, last seen"
    )
    waited_for_rule_evaluation_s: float | None = Field(
        None, description="how long until every reloaded rule group had evaluated"
    )
    waited_for_alerts_s: float | None = Field(
        None, description="how long the named alerts took to go quiet"
    )
    alerting_reset_s: float | None = Field(
        None, description="how long the local stack took to reset its alerting state"
    )
    nats_settings: SyncIntervalApplied | None = Field(
        None, description="the scenario's NATS sync interval: any restart, and what ran"
    )

    @model_serializer(mode="wrap")
    def _measured_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A figure preflight did not take is left out, as evidence has always written it."""
        return {k: v for k, v in handler(self).items() if v is not None}


class ScenarioResult(Model):
    """Everything one scenario's run observed."""

    scenario_id: str
    base_id: str
    title: str
    run_id: str
    target: str = Field("", description="the target (slot) it ran on")
    aliases: list[str] = Field(default_factory=list)
    verdict: Verdict = "error"
    reason: str = ""
    phase_error: str | None = Field(
        None, description="what stopped a phase (with the checks, the verdict rests on it)"
    )
    started_at: float = Field(default_factory=time.time)
    ended_at: float | None = None
    plan: ScenarioPlan | None = Field(None, description="its durations on the target's clock")
    phases: list[PhaseSpan] = Field(default_factory=list)
    faults: list[FaultRecord] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    workload: LedgerSummary | None = Field(
        None, description="the delivery ledger's summary (the delivery check judges it)"
    )
    preflight: PreflightRecord | None = None
    data_loss: DataLossOutcome | None = Field(
        None,
        description="acknowledged messages missing from the stream after heal, and whether any "
        "contract alert fired first (silent data loss when none did); None: not checked",
    )
    slot_after: SlotCheck | None = Field(
        None,
        description="the slot's health after this scenario and whether it was rebuilt before "
        "its next one; None: not checked (older evidence, or the scenario never ran)",
    )

    @field_validator("plan", "preflight", mode="before")
    @classmethod
    def _absent_when_empty(cls, value: Any) -> Any:
        """Evidence wrote `{}` for a plan or a preflight record the scenario never had."""
        return None if value == {} else value

    def span(self, phase: Phase) -> PhaseSpan | None:
        return next((p for p in self.phases if p.phase == phase), None)

    def fault_window(self) -> tuple[float, float] | None:
        """The one definition of the fault window: from the first fault applied to the last
        one proven healed (or to now while a fault is still in effect)."""
        applied = [f.applied_at for f in self.faults if f.applied_at is not None]
        if not applied:
            return None
        healed = [f.heal.at for f in self.faults if f.applied_at and f.heal and f.heal.healed]
        still = any(f.applied_at and not (f.heal and f.heal.healed) for f in self.faults)
        end = time.time() if still or not healed else max(healed)
        return min(applied), end


class Rejudging(Model):
    """Where a re-judged record came from and what it was judged against."""

    at: float
    source: str = Field(description="the run directory (or evidence.json) re-judged")
    contract: str | None = Field(
        None, description="the contract file judged against; None: the objectives recorded"
    )
    changed: list[str] = Field(
        default_factory=list, description="`scenario: check: before → after` for each change"
    )


class RunRecord(Model):
    """One run of one or more scenarios against one target."""

    schema_: str = Field(EVIDENCE_SCHEMA, alias="schema")
    run_id: str
    started_at: float = Field(default_factory=time.time)
    written_at: float | None = None
    argv: list[str] = Field(default_factory=list)
    started_by: str = ""
    target: dict[str, Any]
    slots: list[dict[str, Any]] = Field(
        default_factory=list, description="every target the run used (one per slot)"
    )
    profile: dict[str, Any]
    time_compression: float
    contract: dict[str, Any] = Field(default_factory=dict)
    tools: dict[str, str] = Field(default_factory=dict)
    scenarios: list[ScenarioResult] = Field(default_factory=list)
    interrupted: bool = False
    aborted_by: dict[str, Any] | None = Field(
        None, description="a guard that stopped the run: {guard, at, detail} (the service sets it)"
    )
    leftovers_healed: list[HealOutcome] = Field(default_factory=list)
    forgotten: list[dict[str, Any]] = Field(default_factory=list)
    unproven_forbidden: dict[str, list[str]] = Field(default_factory=dict)
    rejudged: Rejudging | None = Field(
        None, description="set when `harness rejudge` wrote this record from a stored run"
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def slot_rebuilds(self) -> list[SlotCheck]:
        """Every slot a scenario left unhealthy, with what was done about it, in run order."""
        checks = [r.slot_after for r in self.scenarios if r.slot_after is not None]
        return sorted((c for c in checks if c.action != "none"), key=lambda c: c.at)

    def document(self) -> dict[str, Any]:
        """The JSON form written to `evidence.json`."""
        return self.model_dump(mode="json", by_alias=True)
