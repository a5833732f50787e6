"""`harness rejudge`: a stored run judged again, offline ("history in, checker out").

The evidence keeps every check's raw observations typed (schema v3). Re-judging runs each
check kind's pure judge on them again — against the objectives the run recorded, or against a
revised alerting contract — and decides each scenario's verdict again from the new check
results, the faults' heal proofs and any phase error, exactly as the run did. Nothing is
queried: what the run did not observe stays unobserved (a contract whose threshold signal
changed cannot be judged on the old one's values, and says so).

It writes a new record (`evidence.json`, `junit.xml`, and the report) into its own directory;
the stored run is never modified. So a team can ask "would last week's game-day pass under the
revised contract?" and keep both answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness import output
from harness.checks.base import JudgeContext
from harness.checks.data_loss import scenario_outcome
from harness.checks.registry import check_class, unproven_forbidden
from harness.contract import Contract, load_contract
from harness.errors import HarnessError
from harness.evidence.bundle import read_evidence, write_evidence
from harness.evidence.junit import write_junit
from harness.evidence.record import (
    EVIDENCE_SCHEMA,
    CheckResult,
    Rejudging,
    RunRecord,
    ScenarioResult,
)
from harness.verdict import decide

__all__ = ["Change", "RejudgeError", "command", "rejudge", "rejudge_run"]


class RejudgeError(HarnessError):
    """A run that cannot be re-judged (older evidence keeps no observations)."""


@dataclass(frozen=True)
class Change:
    """A check or scenario whose verdict the re-judging changed."""

    scenario_id: str
    name: str  # the check's name, or "verdict" for the scenario's
    before: str
    after: str
    summary: str

    def __str__(self) -> str:
        return f"{self.scenario_id}: {self.name}: {self.before} → {self.after}"


def _recorded_nothing(check: CheckResult) -> bool:
    """A check that errored before it observed anything (its evidence is empty)."""
    return check.evidence == check_class(check.kind).evidence_model()


def rejudge_check(check: CheckResult, result: ScenarioResult, ctx: JudgeContext) -> CheckResult:
    """One check judged again on its evidence (one with nothing observed stays as it was)."""
    if _recorded_nothing(check):
        return check
    kind = check_class(check.kind)
    judged = kind.judge(kind.attach(check.evidence, result), ctx)
    return check.model_copy(
        update={"status": judged.status, "summary": judged.summary, "evidence": judged.evidence}
    )


def rejudge_scenario(result: ScenarioResult, ctx: JudgeContext) -> ScenarioResult:
    """Every check judged again, then the verdict decided again the way the run decided it."""
    checks = [rejudge_check(c, result, ctx) for c in result.checks]
    verdict, reason = decide(
        checks=checks,
        faults=result.faults,
        phase_error=result.phase_error,
        interrupted=result.verdict == "interrupted",
    )
    judged = result.model_copy(update={"checks": checks})
    return judged.model_copy(
        update={"verdict": verdict, "reason": reason, "data_loss": scenario_outcome(judged)}
    )


def rejudge(record: RunRecord, contract: Contract | None = None) -> tuple[RunRecord, list[Change]]:
    """The record judged again (against `contract`, else the objectives it recorded), and what
    changed. Refuses evidence of an older schema: it keeps no observations to judge."""
    if record.schema_ != EVIDENCE_SCHEMA:
        raise RejudgeError(
            f"run {record.run_id} has evidence {record.schema_}, which keeps the verdicts but "
            f"not every observation its judges read; only {EVIDENCE_SCHEMA} runs can be re-judged"
        )
    ctx = JudgeContext(contract, record.time_compression)
    scenarios = [rejudge_scenario(r, ctx) for r in record.scenarios]
    changes: list[Change] = []
    for before, after in zip(record.scenarios, scenarios, strict=True):
        for old, new in zip(before.checks, after.checks, strict=True):
            if old.status != new.status:
                changes.append(
                    Change(after.scenario_id, new.name, old.status, new.status, new.summary)
                )
        if before.verdict != after.verdict:
            changes.append(
                Change(after.scenario_id, "verdict", before.verdict, after.verdict, after.reason)
            )
    rejudged = record.model_copy(
        update={"scenarios": scenarios, "unproven_forbidden": unproven_forbidden(scenarios)}
    )
    return rejudged, changes


@dataclass(frozen=True)
class Rejudged:
    record: RunRecord
    changes: list[Change]
    out_dir: Path
    report: Path | None


def rejudge_run(
    run_dir: Path,
    out_dir: Path | None = None,
    *,
    contract_path: Path | None = None,
    report: bool = True,
) -> Rejudged:
    """`harness rejudge`: read the stored run, judge it again, write the new record (and its
    report) into `out_dir` (default `RUN_DIR/rejudged`), never over the stored run."""
    source = run_dir / "evidence.json" if run_dir.is_dir() else run_dir
    out_dir = out_dir or source.parent / "rejudged"
    if out_dir.resolve() == source.parent.resolve():
        raise RejudgeError(f"{out_dir}: the stored run's own directory; give another --out")
    contract = load_contract(contract_path) if contract_path is not None else None
    record, changes = rejudge(read_evidence(source), contract)
    record.rejudged = Rejudging(
        at=time.time(),
        source=str(source),
        contract=str(contract_path) if contract_path is not None else None,
        changed=[str(c) for c in changes],
    )
    write_evidence(out_dir, record)  # makes the directory
    write_junit(out_dir, record)
    html = None
    if report:
        from harness.report.build import write_report  # matplotlib loads only when needed

        html = write_report([out_dir], out_dir).html
    return Rejudged(record, changes, out_dir, html)


def command(
    run_dir: Annotated[Path, typer.Argument(help="a run directory (with evidence.json)")],
    contract: Annotated[
        Path | None,
        typer.Option(
            "--contract", help="judge against this alerting contract (default: as recorded)"
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="output directory (default: RUN_DIR/rejudged)")
    ] = None,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="write evidence.json and junit.xml only")
    ] = False,
) -> None:
    """Judge a stored run again on the observations its evidence keeps (optionally against a
    revised contract) and write the new verdict; exit 0 only when every scenario passed."""
    from harness.report.runs import RunDirProblem, load_run
    from harness.yamlfile import FileProblems

    try:
        load_run(run_dir)  # the report's own reading: a clear message for a bad directory
        done = rejudge_run(run_dir, out, contract_path=contract, report=not no_report)
    except (RunDirProblem, RejudgeError, FileProblems) as exc:
        output.error(str(exc))
        raise typer.Exit(2) from None
    table = Table(title=output.cell(f"rejudged → {done.out_dir}"), title_justify="left")
    for column in ("scenario", "check", "before", "after", "why"):
        table.add_column(column, overflow="fold")
    for change in done.changes:
        row = (change.scenario_id, change.name, change.before, change.after, change.summary)
        table.add_row(*map(output.cell, row))
    if done.changes:
        output.console.print(table)
    else:
        output.say(f"every verdict as recorded ({len(done.record.scenarios)} scenario(s))")
    output.say(f"evidence: {done.out_dir / 'evidence.json'}")
    if done.report is not None:
        output.say(f"report: {done.report}")
    passed = all(r.verdict == "passed" for r in done.record.scenarios)
    raise typer.Exit(0 if passed else 1)
