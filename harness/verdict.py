"""A scenario's verdict from what its run recorded: a pure function."""

from __future__ import annotations

from harness.evidence.record import CheckResult, FaultRecord, Verdict


def decide(
    *,
    checks: list[CheckResult],
    faults: list[FaultRecord],
    phase_error: str | None = None,
    interrupted: bool = False,
) -> tuple[Verdict, str]:
    """`passed` only when the phases completed, every fault applied was proven healed, and
    every check passed. The first cause is named first (a phase error before the unhealed
    faults it may have caused)."""
    unhealed = [
        f.key for f in faults if (f.applied_at or f.heal) and not (f.heal and f.heal.healed)
    ]
    causes = []
    if phase_error:
        causes.append(phase_error)
    if unhealed:
        causes.append(f"fault(s) not proven healed: {', '.join(unhealed)}")
    if interrupted:
        return "interrupted", "; ".join(["run interrupted (Ctrl-C, SIGTERM or cancel)", *causes])
    if causes:
        return "error", "; ".join(causes)
    if not checks:
        return "error", "the scenario declares nothing to check"
    failed = [c for c in checks if c.status != "pass"]
    reason = "; ".join(f"{c.name}: {c.summary}" for c in failed)
    if any(c.status == "error" for c in failed):
        return "error", reason
    if failed:
        return "failed", reason
    return "passed", ""
