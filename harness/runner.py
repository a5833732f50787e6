"""`harness run` and `harness heal` end to end: output directory, logs, signals, summary."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.checks.base import Check
from harness.checks.catalogue import checks_for
from harness.config import Target
from harness.evidence.bundle import write_evidence
from harness.evidence.junit import write_junit
from harness.faults.base import FaultContext
from harness.faults.journal import Journal, state_dir
from harness.faults.lock import TargetLock, TargetLocked
from harness.faults.runner import FaultRunner, HealOutcome
from harness.logs import configure_logging
from harness.orchestrator import PHASES, Orchestrator, PhaseFailed, ScenarioResult
from harness.scenario import Scenario
from harness.toxiproxy_client import ToxiproxyClient
from harness.workload import Workload

log = structlog.get_logger("run")
console = Console(stderr=True)


def _stack_for(target: Target) -> Any:
    if target.kind != "local" or not target.run_dir:
        return None
    from harness.stack.stack import LocalStack

    return LocalStack.attach(Path(target.run_dir))


async def run_scenarios(
    scenarios: list[Scenario], target: Target, out: Path | None, concurrency: int
) -> int:
    """Run, write evidence.json as each scenario finishes, then junit.xml and the summary;
    returns the exit code (0 only when every scenario passed)."""
    workloads: dict[str, Workload] = {}

    def make_workload(scenario: Scenario, target: Target) -> Workload:
        workloads[scenario.id] = Workload(target.nats_url, scenario.workload)
        return workloads[scenario.id]

    def make_checks(scenario: Scenario, target: Target) -> list[Check]:
        def ledger() -> dict[str, Any] | None:
            workload = workloads.get(scenario.id)
            return workload.summary() if workload else None

        return checks_for(scenario, target, ledger)

    orchestrator = Orchestrator(
        target,
        stack=_stack_for(target),
        workload=make_workload,
        checks=make_checks,
        concurrency=concurrency,
    )
    out_dir = out or Path(".harness") / "runs" / orchestrator.run_id
    configure_logging(json_path=out_dir / "harness.log.jsonl", console_level="warning")
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    tasks = {s.id: progress.add_task(f"{s.id}: waiting", total=len(PHASES)) for s in scenarios}

    def on_phase(scenario_id: str, phase: str) -> None:
        progress.update(
            tasks[scenario_id],
            description=f"{scenario_id}: {phase}",
            completed=PHASES.index(phase),
        )

    orchestrator.on_phase = on_phase
    results: list[ScenarioResult] = []

    def save(result: ScenarioResult) -> None:
        results.append(result)
        progress.update(
            tasks[result.scenario_id],
            description=f"{result.scenario_id}: {result.verdict}",
            completed=len(PHASES),
        )
        write_evidence(out_dir, orchestrator.run_id, target, [r.as_dict() for r in results])

    orchestrator.on_result = save
    log.info("run_start", run_id=orchestrator.run_id, out=str(out_dir), scenarios=len(scenarios))
    interrupted = False
    refused: TargetLocked | PhaseFailed | None = None
    progress.start()
    try:
        async with anyio.create_task_group() as tg:

            async def watch_signals() -> None:
                nonlocal interrupted
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        log.warning("run_interrupted", signal=signal.Signals(signum).name)
                        interrupted = True
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(watch_signals)
            # Caught here: out of the task group it would arrive wrapped in an ExceptionGroup.
            try:
                await orchestrator.run(scenarios)
            except (TargetLocked, PhaseFailed) as exc:
                refused = exc
            tg.cancel_scope.cancel()
    finally:
        progress.stop()
    if refused is not None:
        console.print(f"[bold red]error:[/] {refused}")
        return 3 if isinstance(refused, TargetLocked) else 1
    documents = [r.as_dict() for r in results]
    write_junit(out_dir, orchestrator.run_id, documents)
    write_evidence(
        out_dir,
        orchestrator.run_id,
        target,
        documents,
        interrupted=interrupted,
        leftovers_healed=[o.as_dict() for o in orchestrator.leftovers],
    )
    _summary(results, out_dir)
    if interrupted:
        return 130
    ok = len(results) == len(scenarios) and all(r.verdict == "passed" for r in results)
    return 0 if ok else 1


def _summary(results: list[ScenarioResult], out_dir: Path) -> None:
    table = Table(title=f"run → {out_dir}", title_justify="left")
    for column in (
        "scenario",
        "verdict",
        "faults healed",
        "published",
        "lost",
        "dup",
        "dlq",
        "reason",
    ):
        table.add_column(column, overflow="fold")
    colours = {"passed": "green", "failed": "red", "error": "red", "interrupted": "yellow"}
    for r in results:
        w = r.workload or {}
        healed = sum(1 for f in r.faults if f.heal and f.heal["healed"])
        table.add_row(
            r.scenario_id,
            f"[{colours[r.verdict]}]{r.verdict}[/]",
            f"{healed}/{len(r.faults)}",
            str(w.get("published", "-")),
            str(w.get("lost", "-")),
            str(w.get("duplicate_outcomes", "-")),
            str(w.get("dead_lettered", "-")),
            r.reason,
        )
    console.print(table)


async def heal_target(target: Target) -> list[HealOutcome]:
    """Heal the target's journal under its lock (refused while a run holds it)."""
    import httpx

    with TargetLock(state_dir(target), "harness-heal", target.name):
        async with httpx.AsyncClient(timeout=5) as http:
            ctx = FaultContext(
                target, ToxiproxyClient(target.toxiproxy_url), http, _stack_for(target)
            )
            return await FaultRunner(ctx, Journal.for_target(target)).heal_leftovers()
