"""`harness run` and `harness heal` end to end: output directory, logs, signals, summary."""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import structlog
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.checks.registry import unproven_forbidden
from harness.config import Target
from harness.contract import Contract
from harness.errors import HarnessError, describe
from harness.evidence.bundle import new_record, read_evidence, write_evidence
from harness.evidence.junit import write_junit
from harness.evidence.record import PHASES, HealOutcome, Phase, RunRecord, ScenarioResult
from harness.faults.base import FaultContext, Stack
from harness.faults.journal import Journal, state_dir
from harness.faults.lifecycle import FaultRunner
from harness.faults.lock import TargetLock, TargetLocked
from harness.faults.toxic import SCRATCH_PREFIX
from harness.http import async_client
from harness.logs import configure_logging
from harness.orchestrator import Hooks, Orchestrator, ScenarioRun
from harness.output import cell, err, error, say
from harness.plan import TopologyMismatch, fits, plan_for, unplaceable
from harness.scenario import Scenario
from harness.toxiproxy_client import ToxiproxyClient
from harness.workload import WorkloadDriver

log = structlog.get_logger("run")


def _stack_for(target: Target) -> Stack | None:
    if target.kind != "local" or not target.run_dir:
        return None
    from harness.stack.stack import LocalStack

    return LocalStack.attach(Path(target.run_dir))


async def execute(
    scenarios: list[Scenario],
    targets: list[Target],
    contract: Contract,
    out_dir: Path,
    *,
    started_by: str = "",
    run_id: str | None = None,
    on_phase: Callable[[str, Phase], None] | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> RunRecord:
    """One run, the way the CLI and the service both drive it: lock every target (slot), heal
    its leftovers, then each slot takes the next scenario until none is left; evidence.json
    after each scenario and junit.xml at the end. Cancelling it (Ctrl-C, a cancel scope) still
    heals; the record then says `interrupted`. A locked target raises TargetLocked,
    unhealable leftovers PhaseFailed."""
    if not targets:
        raise ValueError("a run needs at least one target")
    misplaced = unplaceable(scenarios, targets)
    if misplaced:
        raise TopologyMismatch("; ".join(misplaced))
    run_id = run_id or new_run_id()
    record = new_record(run_id, targets[0], contract, started_by)
    record.slots = [t.model_dump(mode="json") for t in targets]

    def save(result: ScenarioResult) -> None:
        record.scenarios.append(result)
        write_evidence(out_dir, record)
        if on_result is not None:
            on_result(result)

    hooks = Hooks(on_phase=on_phase, on_result=save)
    orchestrators = [
        Orchestrator(
            target,
            contract,
            run_id,
            stack=_stack_for(target),
            workload=lambda scenario, target: WorkloadDriver(
                target.nats_servers, scenario.workload, decide_urls=target.router_decide_urls
            ),
            hooks=hooks,
        )
        for target in targets
    ]
    log.info(
        "run_start", run_id=run_id, out=str(out_dir), scenarios=len(scenarios), slots=len(targets)
    )
    # longest first: the slots finish closer together
    todo = sorted(scenarios, key=lambda s: -plan_for(s, targets[0].profile).total_s)

    async def slot(orchestrator: Orchestrator, ctx: FaultContext) -> None:
        # a slot takes only scenarios of its topology (single node, cluster)
        while True:
            mine = next((s for s in todo if fits(s, orchestrator.target)), None)
            if mine is None:
                return
            todo.remove(mine)
            await ScenarioRun(orchestrator, mine, ctx).run()

    try:
        async with contextlib.AsyncExitStack() as sessions:
            contexts = [await sessions.enter_async_context(o.session()) for o in orchestrators]
            async with anyio.create_task_group() as tg:
                for orchestrator, ctx in zip(orchestrators, contexts, strict=True):
                    tg.start_soon(slot, orchestrator, ctx)
    except anyio.get_cancelled_exc_class():
        record.interrupted = True
        _finish(record, orchestrators, scenarios, out_dir)  # synchronous: cannot be cancelled
        raise
    _finish(record, orchestrators, scenarios, out_dir)
    return record


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _finish(
    record: RunRecord,
    orchestrators: list[Orchestrator],
    scenarios: list[Scenario],
    out_dir: Path,
) -> None:
    record.leftovers_healed = [o for orch in orchestrators for o in orch.leftovers]
    record.forgotten = [f for orch in orchestrators for f in orch.forgotten]
    order = {s.id: i for i, s in enumerate(scenarios)}
    record.scenarios.sort(key=lambda r: order.get(r.scenario_id, 0))
    record.unproven_forbidden = unproven_forbidden(record.scenarios)
    write_junit(out_dir, record)
    write_evidence(out_dir, record)


def passed(record: RunRecord, scenarios: list[Scenario]) -> bool:
    return len(record.scenarios) == len(scenarios) and all(
        r.verdict == "passed" for r in record.scenarios
    )


async def run_scenarios(
    scenarios: list[Scenario],
    targets: list[Target],
    contract: Contract,
    out: Path | None,
    *,
    report: bool = True,
) -> int:
    """`harness run`: `execute` with progress on the terminal, SIGINT/SIGTERM handling, the
    summary and (unless `report` is off or the run was interrupted) the report, as the service
    writes it; returns the exit code (0 only when every scenario passed)."""
    run_id = new_run_id()
    out_dir = out or Path(".harness") / "runs" / run_id
    configure_logging(json_path=out_dir / "harness.log.jsonl", console_level="warning")
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    tasks = {s.id: progress.add_task(f"{s.id}: waiting", total=len(PHASES)) for s in scenarios}

    def on_phase(scenario_id: str, phase: Phase) -> None:
        progress.update(
            tasks[scenario_id],
            description=f"{scenario_id}: {phase.value}",
            completed=PHASES.index(phase),
        )

    def on_result(result: ScenarioResult) -> None:
        progress.update(
            tasks[result.scenario_id],
            description=f"{result.scenario_id}: {result.verdict}",
            completed=len(PHASES),
        )

    record: RunRecord | None = None
    interrupted = False
    refused: HarnessError | None = None
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
                record = await execute(
                    scenarios,
                    targets,
                    contract,
                    out_dir,
                    run_id=run_id,
                    on_phase=on_phase,
                    on_result=on_result,
                )
            except HarnessError as exc:  # refused: target locked, leftovers not healed, ...
                refused = exc
            tg.cancel_scope.cancel()
    finally:
        progress.stop()
    if refused is not None:
        error(str(refused))
        return 3 if isinstance(refused, TargetLocked) else 1
    if record is None:  # interrupted before any evidence: read back what was written
        record = read_evidence(out_dir) if (out_dir / "evidence.json").exists() else None
        if record is None:
            return 130
    _summary(record, out_dir)
    if interrupted:
        return 130
    if report:
        await write_run_report(out_dir)
    return 0 if passed(record, scenarios) else 1


async def write_run_report(out_dir: Path) -> Path | None:
    """report.html, report.md (+ plots/) and coverage.json beside the run's evidence; a report
    that cannot be written is a warning (the evidence stands), never the run's failure."""
    from harness.report.build import write_report  # matplotlib loads only when needed

    try:
        written = await anyio.to_thread.run_sync(
            lambda: write_report([out_dir], out_dir, workers=1)
        )
    except Exception as exc:  # a report is a convenience; the evidence stands
        log.warning("report_failed", out=str(out_dir), error=describe(exc))
        say(f"report not written: {describe(exc)}", "yellow", to=err)
        return None
    say(f"report: {written.html}", to=err)
    return written.html


def _summary(record: RunRecord, out_dir: Path) -> None:
    table = Table(title=cell(f"run → {out_dir}"), title_justify="left")
    for column in (
        "scenario",
        "verdict",
        "faults healed",
        "published",
        "lost",
        "dup",
        "dlq",
        "stream lost",
        "reason",
    ):
        table.add_column(column, overflow="fold")
    colours = {"passed": "green", "failed": "red", "error": "red", "interrupted": "yellow"}
    for r in record.scenarios:
        w = r.workload
        applied = [f for f in r.faults if f.applied_at or f.heal]
        healed = sum(1 for f in applied if f.heal and f.heal.healed)
        table.add_row(
            cell(r.scenario_id),
            cell(r.verdict, colours[r.verdict]),
            cell(f"{healed}/{len(applied)}"),
            cell(w.published if w else "-"),
            cell(w.lost if w else "-"),
            cell(w.duplicate_outcomes if w else "-"),
            cell(w.dead_lettered if w else "-"),
            cell(_stream_lost(r)),
            cell(r.reason),
        )
    err.print(table)
    for r in record.scenarios:
        if r.data_loss and r.data_loss.lost:
            colour = "bold red" if r.data_loss.silent else "yellow"
            say(f"{r.scenario_id}: {r.data_loss.headline()}", colour, to=err)
    if record.unproven_forbidden:
        unproven = ", ".join(
            f"{a} ({', '.join(s)})" for a, s in sorted(record.unproven_forbidden.items())
        )
        say(
            "unproven in this run (forbidden, but no scenario here showed they can fire): "
            + unproven,
            "yellow",
            to=err,
        )
    for entry in record.forgotten:
        who = f"{entry['key']} by {entry['by']}"
        say(f"forgotten by an operator: {who}: {entry['reason']}", "yellow", to=err)


def _stream_lost(result: ScenarioResult) -> str:
    """Acknowledged messages missing from the stream read back ("-": not judged)."""
    loss = result.data_loss
    if loss is None or not loss.judged:
        return "-"
    return f"{loss.lost} SILENT" if loss.silent else str(loss.lost)


async def _remove_scratch_proxies(toxiproxy: ToxiproxyClient) -> list[str]:
    """Scratch proxies a killed preflight left (they never carry traffic)."""
    removed = []
    for name in await toxiproxy.proxies():
        if name.startswith(SCRATCH_PREFIX):
            await toxiproxy.delete_proxy(name)
            removed.append(name)
    return removed


async def heal_target(target: Target, *, take_lock: bool = True) -> list[HealOutcome]:
    """Heal the target's journal under its lock (refused while a run holds it). An emergency
    stop passes `take_lock=False`: it heals while the run holding the lock is being cancelled,
    rather than wait for that run to heal cooperatively."""
    with (
        TargetLock(state_dir(target), "harness-heal", target.name)
        if take_lock
        else contextlib.nullcontext()
    ):
        async with async_client(5) as http:
            toxiproxy = ToxiproxyClient(target.toxiproxy_url)
            ctx = FaultContext(target, toxiproxy, http, _stack_for(target))
            outcomes = await FaultRunner(ctx, Journal.for_target(target)).heal_leftovers()
            try:
                await _remove_scratch_proxies(toxiproxy)
            except HarnessError as exc:
                log.warning("scratch_proxies_not_removed", error=str(exc))
            return outcomes


def forget_fault(target: Target, key: str, reason: str, by: str) -> dict[str, Any]:
    """Clear one journal entry on an operator's word, under the target's lock."""
    with TargetLock(state_dir(target), "harness-heal-forget", target.name):
        return Journal.for_target(target).forget(key, reason, by)
