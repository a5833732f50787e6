"""RunManager: starts runs as background tasks through `runner.execute`, follows their progress,
cancels them (the orchestrator heals, the record says so), keeps one run per target, and stops
everything at once.

Status of a run: queued → running → passed | failed | error, or cancelled (a user or the
emergency stop), aborted (a guard tripped) or interrupted (the service stopped under it).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup

from harness.config import Target
from harness.contract import Contract
from harness.errors import HarnessError, describe
from harness.evidence.bundle import new_record, read_evidence, write_evidence
from harness.evidence.record import RunRecord
from harness.faults.journal import state_dir
from harness.faults.lock import TargetLock, TargetLocked
from harness.runner import execute, heal_target, new_run_id, write_run_report
from harness.scenario import Scenario
from harness.service import guards
from harness.service.emergency import heal_everywhere
from harness.service.live import LiveRun
from harness.service.metrics import ServiceMetrics
from harness.service.notify import post_summary
from harness.service.schedules import GuardSpec
from harness.service.store import Audit, Store

log = structlog.get_logger("service.runs")

RunFn = Callable[..., Awaitable[RunRecord]]
"""`runner.execute`'s signature; tests of the API inject a wire-less stand-in."""


class TargetBusy(HarnessError):
    """A target of the run is under test already (this service's run or another process's)."""


class Refused(HarnessError):
    """No run may start now: the safety lever is engaged."""


@dataclass
class RunPlan:
    """A validated run request: what to run, where, with which guards, on whose behalf."""

    scenarios: list[Scenario]
    targets: list[Target]
    guards: list[GuardSpec] = field(default_factory=list)
    started_by: str = ""
    """who: a token's name, or `schedule <name>`; free text goes in `note`"""
    schedule: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def state_keys(self) -> list[Path]:
        return sorted({state_dir(t).resolve() for t in self.targets})


def run_verdict(record: RunRecord, expected: int) -> str:
    """passed only when every scenario ran and passed; a failure is a finding and outranks an
    error (a check that could not be evaluated)."""
    verdicts = [r.verdict for r in record.scenarios]
    if len(verdicts) == expected and all(v == "passed" for v in verdicts):
        return "passed"
    if "failed" in verdicts:
        return "failed"
    if "interrupted" in verdicts or record.interrupted:
        return "interrupted"
    return "error"


def _mark_aborted(out_dir: Path, aborted_by: dict[str, Any]) -> None:
    """The guard that aborted the run, in its evidence."""
    record = read_evidence(out_dir)
    record.aborted_by = aborted_by
    write_evidence(out_dir, record)


def _locked_elsewhere(target: Target) -> str | None:
    """Who holds the target's lock, if anyone (a probe: taken and released at once)."""
    lock = TargetLock(state_dir(target), "service-probe", target.name)
    try:
        lock.acquire()
    except TargetLocked as exc:
        return str(exc)
    lock.release()
    return None


class RunManager:
    def __init__(
        self,
        store: Store,
        metrics: ServiceMetrics,
        runs_dir: Path,
        contract: Contract,
        *,
        run_fn: RunFn = execute,
        webhook_url: str | None = None,
        public_url: str = "",
        write_reports: bool = True,
        refusal: Callable[[], str | None] = lambda: None,
    ):
        self.refusal = refusal
        self.store = store
        self.metrics = metrics
        self.runs_dir = runs_dir
        self.contract = contract
        self.run_fn = run_fn
        self.webhook_url = webhook_url
        self.public_url = public_url.rstrip("/")
        self.write_reports = write_reports
        self.active: dict[str, LiveRun] = {}
        self._busy: dict[Path, str] = {}
        self._released = anyio.Event()
        self._tg: TaskGroup | None = None

    def bind(self, tg: TaskGroup) -> None:
        """Runs live in the service's task group: stopping the service cancels (and heals)
        them."""
        self._tg = tg

    # --- starting --------------------------------------------------------------------------

    def busy(self, plan: RunPlan) -> str | None:
        """Why the run cannot start now, or None."""
        for target, key in zip(
            plan.targets, [state_dir(t).resolve() for t in plan.targets], strict=True
        ):
            if key in self._busy:
                return f"target {target.name!r} is under test by run {self._busy[key]}"
            held = _locked_elsewhere(target)
            if held:
                return held
        return None

    def in_progress(self, started_by: str) -> int:
        """Runs queued or running on behalf of `started_by` (a token's concurrency cap)."""
        return sum(1 for live in self.active.values() if live.row.get("started_by") == started_by)

    async def start(self, plan: RunPlan, *, audit: Audit | None = None, queue: bool = False) -> str:
        """Record the run and start it in the background; its id. The safety lever engaged
        raises Refused; without `queue` a busy target raises TargetBusy; either way nothing
        is written. With `queue` the run waits its turn."""
        if self._tg is None:
            raise RuntimeError("the run manager is not running")
        why = self.refusal()
        if why:
            raise Refused(why)
        if not queue:
            why = await anyio.to_thread.run_sync(self.busy, plan)
            if why:
                raise TargetBusy(why)
            taken = [key for key in plan.state_keys() if key in self._busy]
            if taken:  # claimed by a start that ran while this one looked
                raise TargetBusy(f"a target is under test by run {self._busy[taken[0]]}")
        run_id = new_run_id()
        out_dir = self.runs_dir / run_id
        row = {
            "id": run_id,
            "status": "queued",
            "created_at": time.time(),
            "started_by": plan.started_by,
            "schedule": plan.schedule,
            "targets": [t.model_dump(mode="json") for t in plan.targets],
            "scenarios": [s.id for s in plan.scenarios],
            "request": plan.request,
            "out_dir": str(out_dir),
            "reason": "",
            "note": plan.note,
        }
        if not queue:
            self._claim(plan, run_id)
        try:
            await anyio.to_thread.run_sync(self.store.add_run, row, audit)
        except BaseException:
            self._release(run_id)
            raise
        row = {"started_at": None, "ended_at": None, "aborted_by": None, "notify_error": None,
               **row}  # fmt: skip
        live = LiveRun(run_id, [s.id for s in plan.scenarios], row)
        self.active[run_id] = live
        self.metrics.runs_active.inc()
        self._tg.start_soon(self._drive, live, plan, out_dir, queue)
        return run_id

    def _claim(self, plan: RunPlan, run_id: str) -> None:
        for key in plan.state_keys():
            self._busy[key] = run_id

    def _release(self, run_id: str) -> None:
        for key in [k for k, v in self._busy.items() if v == run_id]:
            del self._busy[key]
        self._released.set()
        self._released = anyio.Event()

    async def _wait_turn(self, plan: RunPlan, run_id: str) -> None:
        while True:
            if await anyio.to_thread.run_sync(self.busy, plan) is None:
                self._claim(plan, run_id)
                return
            with anyio.move_on_after(2.0):  # another process's lock is polled
                await self._released.wait()

    # --- one run ---------------------------------------------------------------------------

    async def _drive(self, live: LiveRun, plan: RunPlan, out_dir: Path, queue: bool) -> None:
        status, reason, record = "error", "", None
        trip: list[guards.Trip] = []
        shutdown = False
        try:
            with anyio.CancelScope() as scope:
                live.cancel_scope = scope
                if live.cancel_reason:
                    scope.cancel()
                if queue:
                    await self._wait_turn(plan, live.run_id)
                live.status = "running"
                live.row["started_at"] = time.time()
                await anyio.to_thread.run_sync(
                    lambda: self.store.update_run(
                        live.run_id, status="running", started_at=live.row["started_at"]
                    )
                )
                live.emit("status", status="running")
                record = await self._execute(live, plan, out_dir, trip)
            if record is not None:
                status = run_verdict(record, len(plan.scenarios))
        except HarnessError as exc:  # refused: target locked, leftovers not healed, ...
            reason = str(exc)
        except anyio.get_cancelled_exc_class():
            shutdown = True
            reason = "the service stopped during the run"
            raise
        except Exception as exc:  # the run's error, recorded
            log.exception("run_failed", run_id=live.run_id)
            reason = describe(exc)
        finally:
            with anyio.CancelScope(shield=True):
                if shutdown:
                    status = "interrupted"
                elif live.cancel_reason and (record is None or record.interrupted):
                    status = "aborted" if trip else "cancelled"
                    reason = (
                        f"aborted by guard {trip[0].guard}: {trip[0].detail}"
                        if trip
                        else f"cancelled by {live.cancel_reason}"
                    )
                try:
                    await self._conclude(live, plan, out_dir, status, reason, trip, shutdown)
                except Exception:  # one run's bookkeeping must not stop the service
                    log.exception("run_conclude_failed", run_id=live.run_id)
                    live.done.set()
                    self.active.pop(live.run_id, None)

    async def _execute(
        self, live: LiveRun, plan: RunPlan, out_dir: Path, trip: list[guards.Trip]
    ) -> RunRecord:
        guard_scope = anyio.CancelScope()
        if plan.guards and self._tg is not None:
            self._tg.start_soon(self._guard, live, plan, guard_scope, trip)
        try:
            return await self.run_fn(
                plan.scenarios,
                plan.targets,
                self.contract,
                out_dir,
                started_by=plan.started_by,
                run_id=live.run_id,
                on_phase=live.on_phase,
                on_result=lambda result: self._on_result(live, result),
            )
        finally:
            guard_scope.cancel()

    async def _guard(
        self, live: LiveRun, plan: RunPlan, scope: anyio.CancelScope, trip: list[guards.Trip]
    ) -> None:
        interval = max(t.profile.evaluation_interval for t in plan.targets)
        with scope:
            tripped = await guards.watch(plan.guards, plan.targets, interval)
            trip.append(tripped)
            log.warning("guard_tripped", run_id=live.run_id, **tripped.document())
            audit = Audit(f"guard:{tripped.guard}", "run.abort", live.run_id,
                          detail=f"{tripped.target}: {tripped.detail}")  # fmt: skip
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.store.audit, audit)
            live.emit("guard", **tripped.document())
            live.cancel(f"guard {tripped.guard}")

    def _on_result(self, live: LiveRun, result: Any) -> None:
        """The runner's callback (synchronous, on the event loop): the result is shown at
        once and stored by a task, off the loop."""
        live.on_result(result)
        if self._tg is not None:
            self._tg.start_soon(self._save_results, live)
        if result.ended_at:
            self.metrics.scenario_duration.labels(result.scenario_id).observe(
                result.ended_at - result.started_at
            )

    async def _save_results(self, live: LiveRun) -> None:
        """Store the results not stored yet, in order; a write once begun is finished and
        counted (the conclusion stores whatever a cancelled writer left)."""
        async with live.saving:
            with anyio.CancelScope(shield=True):
                pending = live.results[live.saved :]
                for summary in pending:
                    await anyio.to_thread.run_sync(self.store.save_result, live.run_id, summary)
                    live.saved += 1

    async def _conclude(
        self,
        live: LiveRun,
        plan: RunPlan,
        out_dir: Path,
        status: str,
        reason: str,
        trip: list[guards.Trip],
        shutdown: bool,
    ) -> None:
        """Store, metrics, evidence (aborted_by), report, webhook; then the run is history.
        Every store and file access runs off the event loop."""
        self._release(live.run_id)
        ended = time.time()
        aborted_by = trip[0].document() if trip else None
        evidence = out_dir / "evidence.json"
        await self._save_results(live)
        if aborted_by and evidence.exists():
            await anyio.to_thread.run_sync(_mark_aborted, out_dir, aborted_by)
        row = await anyio.to_thread.run_sync(self.store.run, live.run_id) or {}
        started = row.get("started_at") or row.get("created_at") or ended
        final = {"status": status, "ended_at": ended, "reason": reason, "aborted_by": aborted_by}
        await anyio.to_thread.run_sync(lambda: self.store.update_run(live.run_id, **final))
        live.row.update(final)
        live.status = status
        self.metrics.runs_total.labels(status).inc()
        self.metrics.run_duration.observe(ended - started)
        self.metrics.runs_active.dec()
        if trip:
            self.metrics.guard_aborts.labels(trip[0].guard).inc()
        if plan.schedule and status == "passed":
            self.metrics.schedule_last_success.labels(plan.schedule).set(ended)
        log.info("run_end", run_id=live.run_id, status=status, reason=reason)
        if self.write_reports and evidence.exists() and not shutdown:
            await write_run_report(out_dir, announce=False)
        if self.webhook_url:
            report = out_dir / "report.html"
            link = f"{self.public_url}/runs/{live.run_id}" if self.public_url else None
            if link and report.exists():
                link = f"{self.public_url}/api/runs/{live.run_id}/report.html"
            stored = await anyio.to_thread.run_sync(self.store.run, live.run_id) or {}
            error = await post_summary(self.webhook_url, stored, link)
            if error:
                await anyio.to_thread.run_sync(
                    lambda: self.store.update_run(live.run_id, notify_error=error)
                )
                live.row["notify_error"] = error
        live.emit("end", status=status, reason=reason, aborted_by=aborted_by)
        live.done.set()
        self.active.pop(live.run_id, None)

    # --- stopping --------------------------------------------------------------------------

    def cancel(self, run_id: str, by: str) -> bool:
        """Ask one run to stop; False when it is not in progress."""
        live = self.active.get(run_id)
        if live is None:
            return False
        live.cancel(by)
        return True

    async def stop_all(self, known: list[Target], by: str) -> dict[str, Any]:
        """Cancel every run and heal every target now (not after the runs wind down)."""
        started = time.monotonic()
        cancelled = []
        targets: dict[Path, Target] = {state_dir(t).resolve(): t for t in known}
        for run_id, live in list(self.active.items()):
            live.cancel(f"stop-all ({by})")
            cancelled.append(run_id)
            for doc in live.row.get("targets", []):
                target = Target.model_validate(doc)
                targets.setdefault(state_dir(target).resolve(), target)
        reports = await heal_everywhere(list(targets.values()))
        return {
            "cancelled": cancelled,
            "targets": reports,
            "clean": all(r["clean"] for r in reports),
            "seconds": round(time.monotonic() - started, 3),
        }

    # --- after a crash ---------------------------------------------------------------------

    def _record_interrupted(self, row: dict[str, Any], outcomes: list[Any], reason: str) -> None:
        """The evidence of a run the service died under: what it wrote (a record after each
        scenario), or a fresh one if it died in its first scenario; interrupted, with the
        leftovers healed now; and its row (blocking: call it in a worker thread)."""
        out_dir = Path(row["out_dir"])
        try:
            record = read_evidence(out_dir)
        except (OSError, ValueError):
            record = new_record(row["id"], Target.model_validate(row["targets"][0]),
                                self.contract, row["started_by"])  # fmt: skip
            record.slots = row["targets"]
        record.interrupted = True
        record.leftovers_healed += outcomes
        write_evidence(out_dir, record)
        self.store.update_run(row["id"], status="interrupted", ended_at=time.time(), reason=reason)

    async def recover(self) -> list[dict[str, Any]]:
        """Runs a dead service left `queued`/`running`: marked interrupted, their targets
        healed from the fault journal (under the lock, as `harness heal` does). The store
        and the evidence are written off the event loop."""
        recovered = []
        for row in await anyio.to_thread.run_sync(self.store.unfinished_runs):
            outcomes: list[Any] = []
            notes = []
            for doc in row["targets"]:
                target = Target.model_validate(doc)
                try:
                    outcomes += await heal_target(target)
                except TargetLocked as exc:
                    notes.append(f"{target.name}: not healed, {exc}")
                except Exception as exc:  # recorded; the next run heals first
                    notes.append(f"{target.name}: not healed, {describe(exc)}")
            reason = "; ".join(
                ["the service stopped during the run (recovered at restart)", *notes]
            )
            await anyio.to_thread.run_sync(self._record_interrupted, row, outcomes, reason)
            self.metrics.runs_total.labels("interrupted").inc()
            log.warning("run_recovered", run_id=row["id"], healed=[o.key for o in outcomes])
            recovered.append(
                {
                    "run_id": row["id"],
                    "healed": [o.model_dump(mode="json") for o in outcomes],
                    "notes": notes,
                }
            )
        return recovered
