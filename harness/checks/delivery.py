"""Delivery invariants from the workload's ledger: nothing lost, duplicates within the
at-least-once bound, no unexpected answers, every poison message dead-lettered."""

from __future__ import annotations

from typing import Any

from harness.checks.base import Check, CheckResult, RunView
from harness.scenario import DeliveryExpectation


class DeliveryCheck(Check):
    kind = "delivery"

    def __init__(self, expectation: DeliveryExpectation, ledger_summary: Any):
        super().__init__("delivery invariants")
        self.spec = expectation
        self.summary_of = ledger_summary  # callable returning the ledger summary

    async def verdict(self, run: RunView) -> CheckResult:
        summary = self.summary_of()
        if not summary or not summary.get("acked"):
            return self.error(
                "no acked request in the ledger: the workload did not run", ledger=summary
            )
        spec = self.spec
        failures = []
        if summary["lost"] > spec.lost:
            failures.append(f"{summary['lost']} lost (allowed {spec.lost})")
        if summary["max_duplicates_per_message"] > spec.max_duplicates_per_message:
            failures.append(
                f"a message was delivered {summary['max_duplicates_per_message']} extra time(s) "
                f"(allowed {spec.max_duplicates_per_message})"
            )
        if summary["unexpected"] > spec.unexpected:
            failures.append(f"{summary['unexpected']} unexpected answer(s)")
        poison = run.scenario.workload.mix.poison > 0 or any(
            f.kind == "poison" for f in run.scenario.faults
        )
        if spec.poison_dead_lettered and poison:
            if not summary["poison_published"]:
                return self.error("poison messages expected but none was published", ledger=summary)
            if summary["poison_dead_lettered"] < summary["poison_published"]:
                failures.append(
                    f"{summary['poison_published'] - summary['poison_dead_lettered']} of "
                    f"{summary['poison_published']} poison message(s) not dead-lettered"
                )
        shown = (
            f"{summary['acked']} acked: {summary['answered']} answered, "
            f"{summary['dead_lettered']} dead-lettered, {summary['lost']} lost, "
            f"{summary['duplicate_outcomes']} duplicate(s)"
        )
        evidence = {"expected": spec.model_dump(), "ledger": summary}
        if failures:
            return CheckResult(self.name, self.kind, "fail", "; ".join(failures), evidence)
        return CheckResult(self.name, self.kind, "pass", shown, evidence)
