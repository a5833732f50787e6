"""The typed record of a run: it *is* the evidence schema (`evidence.json` is its JSON form).

Checks, the orchestrator and the report writers share these models; dicts appear only where
a check's raw observations are kept verbatim (`CheckResult.evidence`) and at the file boundary.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.workload.ledger import LedgerSummary

EVIDENCE_SCHEMA = "harness.evidence/v2"

Status = Literal["pass", "fail", "error"]
Verdict = Literal["passed", "failed", "error", "interrupted"]


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


class CheckResult(Model):
    """One check's verdict, the reason in one line, everything it rests on, and when it was
    observed (from its first observation to its verdict)."""

    name: str
    kind: str
    status: Status
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None


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
    started_at: float = Field(default_factory=time.time)
    ended_at: float | None = None
    plan: dict[str, Any] = Field(default_factory=dict)
    phases: list[PhaseSpan] = Field(default_factory=list)
    faults: list[FaultRecord] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    workload: LedgerSummary | None = Field(
        None, description="the delivery ledger's summary (the delivery check judges it)"
    )
    preflight: dict[str, Any] = Field(default_factory=dict)

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

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def document(self) -> dict[str, Any]:
        """The JSON form written to `evidence.json`."""
        return self.model_dump(mode="json", by_alias=True)
