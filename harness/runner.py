"""`harness run` and `harness heal` end to end: output directory, logs, signals, summary."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import structlog
from rich.console import Console
from rich.table import Table

from harness.checks.base import Check
from harness.checks.catalogue import checks_for
from harness.config import Target
from harness.faults.base import FaultContext
from harness.faults.journal import Journal, state_dir
from harness.faults.lock import TargetLock, TargetLocked
from harness.faults.runner import FaultRunner, HealOutcome
from harness.logs import configure_logging
from harness.orchestrator import Orchestrator, PhaseFailed, ScenarioResult
from harness.runfiles import write_run
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
    """Run, write run.json as each scenario finishes, print the summary; the exit code."""
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
    configure_logging(json_path=out_dir / "harness.log.jsonl")
    results: list[ScenarioResult] = []

    def save(result: ScenarioResult) -> None:
        results.append(result)
        write_run(out_dir, orchestrator.run_id, target, [r.as_dict() for r in results])

    orchestrator.on_result = save
    log.info("run_start", run_id=orchestrator.run_id, out=str(out_dir), scenarios=len(scenarios))
    interrupted = False
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
            await orchestrator.run(scenarios)
            tg.cancel_scope.cancel()
    except TargetLocked as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 3
    except PhaseFailed as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 1
    write_run(
        out_dir,
        orchestrator.run_id,
        target,
        [r.as_dict() for r in results],
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
