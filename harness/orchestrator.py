"""Drives scenarios through their phases against one target, healing every fault whatever happens.

`Orchestrator` owns one target: its `session` locks it and heals what a dead run left; scenarios
then run one at a time on it (two on one stack would see each other's faults and alerts: run
in parallel in separate slots instead). `ScenarioRun` is one scenario: preflight → baseline →
inject → observe → heal → recover → verdict, one method per phase, each with a deadline from
the scenario's plan on the target's clock. An exception, Ctrl-C or SIGTERM anywhere still heals
(shielded, with a fallback) and keeps what was observed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import structlog

from harness import sync_apply
from harness.adapters import Adapters
from harness.checks.alert_poller import AlertPoller
from harness.checks.base import Check, RunView
from harness.checks.data_loss import scenario_outcome
from harness.checks.registry import checks_for
from harness.config import Target
from harness.contract import Contract
from harness.dataloss import History
from harness.errors import HarnessError, describe
from harness.evidence.record import FaultRecord, HealOutcome, Phase, PhaseSpan, ScenarioResult
from harness.faults import driver_for
from harness.faults.base import FaultContext, FaultDriver, Stack
from harness.faults.journal import Journal, state_dir
from harness.faults.lifecycle import FaultApplyError, FaultRunner
from harness.faults.lock import TargetLock
from harness.http import async_client
from harness.plan import plan_for
from harness.preflight import PreflightFailed, preflight
from harness.scenario import Scenario
from harness.verdict import decide
from harness.workload.ledger import LedgerSummary

log = structlog.get_logger("orchestrator")


class Workload(Protocol):
    """The traffic a scenario runs under (see harness.workload)."""

    async def run(self) -> None: ...
    async def stop_and_drain(self, timeout: float) -> None: ...
    async def close(self) -> None: ...
    def summary(self) -> LedgerSummary: ...
    def history(self) -> History: ...


CHECK_VERDICT_S = 30.0
"""How long one check may take to reach its verdict after recovery."""


class PhaseFailed(HarnessError):
    """A phase could not complete; the scenario's verdict is `error`."""


WorkloadFactory = Callable[[Scenario, Target], Workload | None]
ResultHook = Callable[[ScenarioResult], Awaitable[None] | None]
PhaseHook = Callable[[str, Phase], None]


@dataclass(frozen=True)
class Hooks:
    """What the caller hears of a run: each phase as it starts, each scenario's result."""

    on_phase: PhaseHook | None = None
    on_result: ResultHook | None = None


class Orchestrator:
    """Runs scenarios against one target, one after the other, in one `session`."""

    def __init__(
        self,
        target: Target,
        contract: Contract,
        run_id: str,
        *,
        stack: Stack | None = None,
        workload: WorkloadFactory | None = None,
        adapters: Adapters | None = None,
        hooks: Hooks = Hooks(),
        heal_timeout: float = 10.0,
    ):
        self.target = target
        self.contract = contract
        self.run_id = run_id
        self.stack = stack
        self.workload_factory = workload or (lambda s, t: None)
        self.adapters = adapters or Adapters.for_target(target)
        self.hooks = hooks
        self.heal_timeout = heal_timeout
        self.journal = Journal.for_target(target)
        self.leftovers: list[HealOutcome] = []
        self.forgotten: list[dict[str, Any]] = []

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[FaultContext]:
        """The target locked for this run, with whatever a dead run left healed first."""
        with TargetLock(state_dir(self.target), self.run_id, self.target.name):
            self.forgotten = self.journal.take_forgotten(self.run_id)
            async with self._fault_context() as ctx:
                self.leftovers = await FaultRunner(ctx, self.journal).heal_leftovers()
                unhealed = [o for o in self.leftovers if not o.healed]
                if unhealed:
                    raise PhaseFailed(
                        f"faults left by an earlier run on {self.target.name} could not be "
                        "healed: "
                        + "; ".join(f"{o.key}: {'; '.join(o.errors)}" for o in unhealed)
                        + " (see `harness heal`; `harness heal --forget KEY --reason TEXT` "
                        "clears an entry whose absence cannot be proven)"
                    )
                yield ctx

    @contextlib.asynccontextmanager
    async def _fault_context(self) -> AsyncIterator[FaultContext]:
        async with async_client(5.0) as http:
            yield FaultContext(
                target=self.target, toxiproxy=self.adapters.toxiproxy, http=http, stack=self.stack
            )


class ScenarioRun:
    """One scenario against the orchestrator's target, from preflight to verdict."""

    def __init__(self, owner: Orchestrator, scenario: Scenario, ctx: FaultContext):
        self.owner = owner
        self.scenario = scenario
        self.target = owner.target
        self.plan = plan_for(scenario, self.target.profile)
        self.result = self._new_result()
        self.workload = owner.workload_factory(scenario, self.target)
        self.ctx = dataclasses.replace(ctx, workload=self.workload)
        self.faults = FaultRunner(self.ctx, owner.journal, timeout=owner.heal_timeout)
        self.drivers = self._drivers()
        self.poller, self.view, self.checks = self._observers()

    def _new_result(self) -> ScenarioResult:
        return ScenarioResult(
            scenario_id=self.scenario.id,
            base_id=self.scenario.base_id,
            title=self.scenario.title,
            run_id=self.owner.run_id,
            target=self.target.name,
            aliases=self.scenario.aliases,
            plan=self.plan,
        )

    def _drivers(self) -> list[FaultDriver]:
        """One driver per fault, each with its record in the result."""
        prefix = f"{self.owner.run_id}-{self.scenario.id}"
        drivers = [
            driver_for(fault, self.ctx, f"{prefix}-f{i}")
            for i, fault in enumerate(self.scenario.faults)
        ]
        self.result.faults = [
            FaultRecord(
                key=d.key,
                kind=d.kind,
                spec=d.spec.model_dump(mode="json"),
                planned_start_s=p.start_s,
                planned_duration_s=p.duration_s,
            )
            for d, p in zip(drivers, self.plan.faults, strict=True)
        ]
        return drivers

    def _observers(self) -> tuple[AlertPoller, RunView, list[Check]]:
        """The alert poller, the checks' view of the run, and the checks."""
        adapters = self.owner.adapters
        poller = AlertPoller(
            adapters.prometheus,
            adapters.alertmanager,
            self.scenario.alerts_named(),
            self.target.profile.evaluation_interval,
        )
        view = RunView(
            target=self.target,
            scenario=self.scenario,
            plan=self.plan,
            contract=self.owner.contract,
            result=self.result,
            prometheus=adapters.prometheus,
            alertmanager=adapters.alertmanager,
            receiver=adapters.receiver,
            alerts=poller,
            ledger=self.workload.summary if self.workload is not None else None,
            history=self.workload.history if self.workload is not None else None,
            streams=adapters.streams,
        )
        checks = checks_for(self.scenario, self.target, adapters.prometheus, poller)
        return poller, view, checks

    # --- the whole scenario ----------------------------------------------------------------

    async def run(self) -> ScenarioResult:
        """All phases; never raises for the scenario's own failures."""
        phase_error: str | None = None
        interrupted = False
        with structlog.contextvars.bound_contextvars(
            run_id=self.owner.run_id, scenario=self.scenario.id
        ):
            log.info("scenario_start", title=self.scenario.title, faults=len(self.drivers))
            try:
                await self._phase(Phase.PREFLIGHT, self.plan.preflight_s, self.preflight)
                await self._phases()
            except PhaseFailed as exc:
                phase_error = str(exc)
            except anyio.get_cancelled_exc_class():
                interrupted = True
                self._close_open_phases("interrupted")
                raise
            except Exception as exc:  # recorded as the scenario's error
                log.exception("scenario_error")
                phase_error = describe(exc)
                self._close_open_phases("error")
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await self.heal()
                    except PhaseFailed as exc:  # recorded; the verdict names it
                        phase_error = "; ".join(filter(None, [phase_error, str(exc)]))
                    if self.workload is not None:
                        await self.workload.close()
                        self.result.workload = self.workload.summary()
                    await self.conclude(phase_error, interrupted)
                    if self.scenario.nats is not None:  # the slot's own setting again
                        await sync_apply.restore(self.ctx)
        return self.result

    async def _phases(self) -> None:
        """Baseline to recover, with the workload, the alert poller and the checks' observers
        running beside them. A phase failure comes out bare, not wrapped in the task group's
        ExceptionGroup."""
        try:
            async with anyio.create_task_group() as background:
                background.start_soon(self.poller.run)
                if self.workload is not None:
                    background.start_soon(self.workload.run)
                for check in self.checks:
                    background.start_soon(check.observe, self.view)
                await self._phase(Phase.BASELINE, self.plan.baseline_s + 5, self.baseline)
                await self.inject_and_observe()
                await self._phase(Phase.HEAL, self.plan.heal_s, self.heal)
                await self._phase(Phase.RECOVER, self.plan.recover_s, self.recover)
                background.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            single = _single(group)
            if single is None:
                raise
            raise single from None

    # --- phases ----------------------------------------------------------------------------

    async def _phase(self, phase: Phase, timeout: float, body: Callable[[], Awaitable[Any]]) -> Any:
        span = PhaseSpan(phase=phase, start=time.time())
        self.result.phases.append(span)
        log.info("phase_start", phase=phase.value, timeout_s=round(timeout, 2))
        if self.owner.hooks.on_phase is not None:
            self.owner.hooks.on_phase(self.scenario.id, phase)
        for check in self.checks:
            await check.on_phase(phase, self.view)
        try:
            with anyio.fail_after(timeout):
                value = await body()
        except TimeoutError:
            self._end(span, "timeout")
            log.warning("phase_timeout", phase=phase.value, timeout_s=timeout)
            raise PhaseFailed(f"phase {phase.value} did not finish within {timeout:g}s") from None
        except HarnessError as exc:
            self._end(span, "error", str(exc))
            raise PhaseFailed(f"{phase.value}: {exc}") from exc
        self._end(span, "ok")
        log.info("phase_end", phase=phase.value, seconds=round(span.end - span.start, 2))
        return value

    def _end(self, span: PhaseSpan, status: str, detail: str = "") -> None:
        span.end, span.status, span.detail = time.time(), status, detail  # type: ignore[assignment]
        self.view.mark_ended(span.phase)

    def _close_open_phases(self, status: str) -> None:
        for span in self.result.phases:
            if span.end is None:
                self._end(span, status)

    async def preflight(self) -> None:
        settings = await sync_apply.prepare(self.ctx, self.scenario)
        reset = None
        if self.owner.stack is not None:  # a local stack starts each scenario from quiet
            try:
                reset = round(await self.owner.stack.reset_alerting(), 2)
            except HarnessError as exc:  # StackError: a component did not come back
                raise PreflightFailed(f"could not reset the alerting state: {exc}") from exc
        record = await preflight(
            self.target,
            self.scenario,
            self.drivers,
            self.owner.journal,
            self.owner.run_id,
            self.poller,
            self.owner.adapters,
            rules_reloaded_at=None if reset is None else time.time(),
        )
        record.alerting_reset_s = reset
        record.nats_settings = settings
        self.result.preflight = record

    async def baseline(self) -> None:
        await anyio.sleep(self.plan.baseline_s)

    async def inject_and_observe(self) -> None:
        """Inject each fault at its offset, hold it, heal it: the inject phase lasts until the
        last fault is in effect, the observe phase until the last one is healed."""
        records = {r.key: r for r in self.result.faults}
        applied = {d.key: anyio.Event() for d in self.drivers}
        finished = anyio.Event()
        healed: set[str] = set()
        failures: list[str] = []

        async def lifecycle(driver: FaultDriver, start: float, duration: float) -> None:
            record = records[driver.key]
            try:
                await anyio.sleep(start)
                record.read_back = await self.faults.inject(driver)
                record.applied_at = time.time()
            except FaultApplyError as exc:
                record.error = str(exc)
                failures.append(str(exc))
                return
            finally:
                applied[driver.key].set()
            await driver.hold(duration)
            record.heal = await self.faults.heal(driver)
            healed.add(driver.key)
            if len(healed) == len(self.drivers):
                finished.set()

        last_start = max(f.start_s for f in self.plan.faults)

        async def all_applied() -> None:
            for event in applied.values():
                await event.wait()
            if failures:
                raise PhaseFailed("; ".join(failures))

        async with anyio.create_task_group() as tg:
            for driver, fault in zip(self.drivers, self.plan.faults, strict=True):
                tg.start_soon(lifecycle, driver, fault.start_s, fault.duration_s)
            await self._phase(Phase.INJECT, last_start + self.plan.inject_s, all_applied)
            # each fault's own heal may take up to its bound (a damaged node that does not
            # come back is rebuilt by the fallback): the phase never cuts a heal short
            heal = max([self.plan.heal_s, *(self.faults.heal_bound(d) for d in self.drivers)])
            await self._phase(Phase.OBSERVE, self.plan.fault_window_s + heal + 10, finished.wait)

    async def heal(self) -> None:
        """Heal whatever is not yet proven healed (after a failure or an interrupt)."""
        keys = {e["key"] for e in self.owner.journal.entries()}
        for driver, record in zip(self.drivers, self.result.faults, strict=True):
            if record.heal is not None and record.heal.healed:
                continue
            if driver.key not in keys and record.heal is None:
                continue  # never journaled, so never applied
            record.heal = await self.faults.heal(driver)
        left = [
            d.key for d in self.drivers if d.key in {e["key"] for e in self.owner.journal.entries()}
        ]
        if left:
            raise PhaseFailed(f"faults still in the journal after heal: {', '.join(left)}")

    async def recover(self) -> None:
        """Traffic keeps flowing until every check's recovery condition holds; then drain."""
        drain = min(self.plan.drain_s, self.plan.recover_s / 2)
        with anyio.move_on_after(max(1.0, self.plan.recover_s - drain - 1)):
            async with anyio.create_task_group() as tg:
                for check in self.checks:
                    tg.start_soon(check.settle, self.view)
        if self.workload is not None:
            await self.workload.stop_and_drain(drain)

    async def conclude(self, phase_error: str | None, interrupted: bool) -> None:
        """Verdict phase: every check's result, then the pure verdict; never raises."""
        try:
            timeout = CHECK_VERDICT_S * (len(self.checks) + 1)
            await self._phase(Phase.VERDICT, timeout, self.judge_checks)
        except PhaseFailed as exc:
            phase_error = "; ".join(filter(None, [phase_error, str(exc)]))
        self.result.phase_error = phase_error
        self.result.data_loss = scenario_outcome(self.result)
        self.result.verdict, self.result.reason = decide(
            checks=self.result.checks,
            faults=self.result.faults,
            phase_error=phase_error,
            interrupted=interrupted,
        )
        self.result.ended_at = time.time()
        log.info("scenario_end", verdict=self.result.verdict, reason=self.result.reason)
        if self.owner.hooks.on_result is not None:
            maybe = self.owner.hooks.on_result(self.result)
            if maybe is not None:
                await maybe

    async def judge_checks(self) -> None:
        """Each check's verdict; a check that cannot conclude is an error, not a crash."""
        for check in self.checks:
            try:
                with anyio.fail_after(CHECK_VERDICT_S):
                    self.result.checks.append(await check.verdict(self.view))
            except Exception as exc:  # a check that cannot conclude is an error
                self.result.checks.append(
                    check.error(f"could not evaluate: {describe(exc)}").model_copy(
                        update={"started_at": check.started_at, "ended_at": time.time()}
                    )
                )


def _single(group: BaseExceptionGroup) -> BaseException | None:
    """The one exception a task group wrapped (nested groups unwrapped), if there is one."""
    errors = list(group.exceptions)
    while len(errors) == 1 and isinstance(errors[0], BaseExceptionGroup):
        errors = list(errors[0].exceptions)
    return errors[0] if len(errors) == 1 else None
