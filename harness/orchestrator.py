"""Drives scenarios through their phases against one target, healing every fault whatever happens.

preflight → baseline → inject → observe → heal → recover → verdict. Each phase has a deadline;
an exception, Ctrl-C or SIGTERM anywhere still heals (shielded, with a fallback) and keeps what
was observed, with the scenario marked `interrupted` or `error`. Several scenarios run with a
concurrency limit; those needing a shared component to themselves run alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import anyio
import httpx
import structlog

from harness.checks.base import Check, CheckResult, PhaseWindow, RunView
from harness.config import Target
from harness.faults import driver_for
from harness.faults.base import FaultContext, FaultDriver
from harness.faults.journal import Journal, state_dir
from harness.faults.lock import TargetLock
from harness.faults.runner import FaultApplyError, FaultRunner, HealOutcome
from harness.scenario import Scenario
from harness.target_check import check_target
from harness.toxiproxy_client import ToxiproxyClient

log = structlog.get_logger("orchestrator")

Verdict = Literal["passed", "failed", "error", "interrupted"]
PHASES = ("preflight", "baseline", "inject", "observe", "heal", "recover", "verdict")


class Workload(Protocol):
    """The traffic a scenario runs under (see harness.workload)."""

    async def run(self) -> None: ...
    async def stop_and_drain(self, timeout: float) -> None: ...
    async def close(self) -> None: ...
    def summary(self) -> dict[str, Any]: ...


@dataclass
class FaultRecord:
    """One fault of one scenario: plan, read-back while in effect, how it was healed."""

    key: str
    kind: str
    spec: dict[str, Any]
    planned_start_s: float
    planned_duration_s: float
    applied_at: float | None = None
    read_back: dict[str, Any] | None = None
    error: str | None = None
    heal: dict[str, Any] | None = None


@dataclass
class PhaseRecord:
    name: str
    start: float
    end: float | None = None
    status: str = "running"  # ok | timeout | error | interrupted | skipped
    detail: str = ""


@dataclass
class ScenarioResult:
    """Everything one scenario's run observed; the evidence writers read this."""

    scenario_id: str
    title: str
    run_id: str
    verdict: Verdict = "error"
    reason: str = ""
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    phases: list[PhaseRecord] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    workload: dict[str, Any] | None = None
    preflight: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PhaseFailed(Exception):
    """A phase could not complete; the scenario's verdict is `error`."""


ChecksFactory = Callable[[Scenario, Target], list[Check]]
WorkloadFactory = Callable[[Scenario, Target], Workload | None]


class Orchestrator:
    """Runs scenarios against one target."""

    def __init__(
        self,
        target: Target,
        *,
        stack: Any = None,
        run_id: str | None = None,
        checks: ChecksFactory | None = None,
        workload: WorkloadFactory | None = None,
        concurrency: int = 1,
        heal_timeout: float = 10.0,
        on_result: Callable[[ScenarioResult], Awaitable[None] | None] | None = None,
        on_phase: Callable[[str, str], None] | None = None,
    ):
        self.target = target
        self.stack = stack
        self.run_id = run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.checks_factory = checks or (lambda s, t: [])
        self.workload_factory = workload or (lambda s, t: None)
        self.concurrency = max(1, concurrency)
        self.heal_timeout = heal_timeout
        self.on_result = on_result
        self.on_phase = on_phase
        self.journal = Journal.for_target(target)
        self.leftovers: list[HealOutcome] = []

    # --- run -------------------------------------------------------------------------------

    async def run(self, scenarios: Sequence[Scenario]) -> list[ScenarioResult]:
        """Lock the target, heal what a dead run left, run every scenario, release."""
        results: list[ScenarioResult] = []
        with TargetLock(state_dir(self.target), self.run_id, self.target.name):
            async with self._fault_context() as ctx:
                self.leftovers = await FaultRunner(ctx, self.journal).heal_leftovers()
                unhealed = [o for o in self.leftovers if not o.healed]
                if unhealed:
                    keys = ", ".join(o.key for o in unhealed)
                    raise PhaseFailed(f"faults left by an earlier run could not be healed: {keys}")
                shared = [s for s in scenarios if not s.exclusive]
                alone = [s for s in scenarios if s.exclusive]
                limiter = anyio.CapacityLimiter(self.concurrency)

                async def one(scenario: Scenario) -> None:
                    async with limiter:
                        results.append(await self.run_scenario(scenario, ctx))

                async with anyio.create_task_group() as tg:
                    for scenario in shared:
                        tg.start_soon(one, scenario)
                for scenario in alone:
                    results.append(await self.run_scenario(scenario, ctx))
        order = {s.id: i for i, s in enumerate(scenarios)}
        return sorted(results, key=lambda r: order.get(r.scenario_id, 0))

    @contextlib.asynccontextmanager
    async def _fault_context(self) -> AsyncIterator[FaultContext]:
        async with httpx.AsyncClient(timeout=5.0) as http:
            yield FaultContext(
                target=self.target,
                toxiproxy=ToxiproxyClient(self.target.toxiproxy_url),
                http=http,
                stack=self.stack,
            )

    # --- one scenario ----------------------------------------------------------------------

    async def run_scenario(self, scenario: Scenario, ctx: FaultContext) -> ScenarioResult:
        """All phases of one scenario; never raises for the scenario's own failures."""
        result = ScenarioResult(scenario.id, scenario.title, self.run_id)
        view = RunView(self.target, scenario)
        checks = self.checks_factory(scenario, self.target)
        workload = self.workload_factory(scenario, self.target)
        ctx = dataclasses.replace(ctx, workload=workload)
        runner = FaultRunner(ctx, self.journal, timeout=self.heal_timeout)
        drivers = [
            driver_for(fault, ctx, f"{self.run_id}-{scenario.id}-f{i}")
            for i, fault in enumerate(scenario.faults)
        ]
        result.faults = [
            FaultRecord(d.key, d.kind, d.spec.model_dump(mode="json"), f.start, f.duration)
            for d, f in zip(drivers, scenario.faults, strict=True)
        ]
        view.faults = result.faults
        healed: dict[str, HealOutcome] = {}
        with structlog.contextvars.bound_contextvars(run_id=self.run_id, scenario=scenario.id):
            log.info("scenario_start", title=scenario.title, faults=len(drivers))
            try:
                async with anyio.create_task_group() as background:
                    await self._phase(
                        result,
                        view,
                        checks,
                        "preflight",
                        scenario.timeouts.preflight,
                        lambda: self._preflight(scenario, result),
                    )
                    if workload is not None:
                        background.start_soon(workload.run)
                    for check in checks:
                        background.start_soon(check.observe, view)
                    await self._phase(
                        result,
                        view,
                        checks,
                        "baseline",
                        scenario.timeouts.baseline + 5,
                        lambda: anyio.sleep(scenario.timeouts.baseline),
                    )
                    await self._faults(result, view, checks, scenario, runner, drivers, healed)
                    await self._phase(
                        result,
                        view,
                        checks,
                        "heal",
                        scenario.timeouts.heal,
                        lambda: self._heal_all(runner, drivers, healed, result),
                    )
                    await self._phase(
                        result,
                        view,
                        checks,
                        "recover",
                        scenario.timeouts.recover,
                        lambda: self._recover(scenario, workload, checks, view),
                    )
                    background.cancel_scope.cancel()
                result.verdict, result.reason = "passed", ""
            except PhaseFailed as exc:
                result.verdict, result.reason = "error", str(exc)
            except anyio.get_cancelled_exc_class():
                result.verdict, result.reason = (
                    "interrupted",
                    "run interrupted (Ctrl-C, SIGTERM or cancel)",
                )
                self._close_phase(result, "interrupted")
                raise
            except Exception as exc:  # noqa: BLE001 - recorded as the scenario's error
                log.exception("scenario_error")
                result.verdict, result.reason = "error", f"{type(exc).__name__}: {exc}"
                self._close_phase(result, "error")
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await self._heal_all(runner, drivers, healed, result)
                    except PhaseFailed as exc:  # recorded; _conclude turns it into an error
                        result.reason = str(exc)
                    if workload is not None:
                        await workload.close()
                        result.workload = workload.summary()
                    await self._conclude(result, view, checks)
        return result

    async def _conclude(self, result: ScenarioResult, view: RunView, checks: list[Check]) -> None:
        """Verdict phase: collect check results and decide; unhealed faults are an error."""
        record = PhaseRecord("verdict", time.time())
        result.phases.append(record)
        for check in checks:
            try:
                with anyio.fail_after(30):
                    result.checks.append(await check.verdict(view))
            except Exception as exc:  # noqa: BLE001 - a check that cannot conclude is an error
                result.checks.append(
                    check.error(f"could not evaluate: {type(exc).__name__}: {exc}")
                )
        unhealed = [f.key for f in result.faults if f.heal is not None and not f.heal["healed"]]
        if not checks and result.verdict == "passed":
            result.verdict, result.reason = "error", "the scenario declares nothing to check"
        elif unhealed:
            result.verdict = "error"
            result.reason = f"fault(s) not proven healed: {', '.join(unhealed)}"
        elif result.verdict == "passed":
            failed = [c for c in result.checks if c.status != "pass"]
            if any(c.status == "error" for c in failed):
                result.verdict = "error"
            elif failed:
                result.verdict = "failed"
            result.reason = "; ".join(f"{c.name}: {c.summary}" for c in failed)
        record.end, record.status = time.time(), "ok"
        result.ended_at = time.time()
        log.info("scenario_end", verdict=result.verdict, reason=result.reason)
        if self.on_result is not None:
            maybe = self.on_result(result)
            if maybe is not None:
                await maybe

    # --- phases ----------------------------------------------------------------------------

    async def _phase(
        self,
        result: ScenarioResult,
        view: RunView,
        checks: list[Check],
        name: str,
        timeout: float,
        body: Callable[[], Awaitable[Any]],
    ) -> Any:
        record = PhaseRecord(name, time.time())
        result.phases.append(record)
        view.phases[name] = PhaseWindow(name, record.start)
        log.info("phase_start", phase=name, timeout_s=timeout)
        if self.on_phase is not None:
            self.on_phase(result.scenario_id, name)
        for check in checks:
            await check.on_phase(name, view)
        try:
            with anyio.fail_after(timeout):
                value = await body()
        except TimeoutError:
            record.end, record.status = time.time(), "timeout"
            view.mark_ended(name, record.end)
            log.warning("phase_timeout", phase=name, timeout_s=timeout)
            raise PhaseFailed(f"phase {name} did not finish within {timeout:g}s") from None
        except PhaseFailed as exc:
            record.end, record.status, record.detail = time.time(), "error", str(exc)
            view.mark_ended(name, record.end)
            raise
        record.end, record.status = time.time(), "ok"
        view.mark_ended(name, record.end)
        log.info("phase_end", phase=name, seconds=round(record.end - record.start, 2))
        return value

    @staticmethod
    def _close_phase(result: ScenarioResult, status: str) -> None:
        for record in result.phases:
            if record.end is None:
                record.end, record.status = time.time(), status

    async def _preflight(self, scenario: Scenario, result: ScenarioResult) -> None:
        """Target healthy, no fault of ours active, no forbidden alert already firing."""
        probes = await check_target(self.target)
        result.preflight["probes"] = [p.as_dict() for p in probes]
        down = [f"{p.name}: {p.detail}" for p in probes if not p.ok]
        if down:
            raise PhaseFailed("target not healthy: " + "; ".join(down))
        leftover = self.journal.entries()
        ours = [e["key"] for e in leftover if e["key"].startswith(f"{self.run_id}-{scenario.id}-")]
        if ours:
            raise PhaseFailed(f"faults already active: {', '.join(ours)}")
        proxies = await ToxiproxyClient(self.target.toxiproxy_url).proxies()
        toxics = {n: [t["name"] for t in p.get("toxics", [])] for n, p in proxies.items()}
        disabled = [n for n, p in proxies.items() if not p.get("enabled", True)]
        result.preflight["toxiproxy"] = {"toxics": toxics, "disabled": disabled}
        for name in scenario.proxies():
            if toxics.get(name) or name in disabled:
                raise PhaseFailed(
                    f"proxy {name} is already faulted: {toxics.get(name)}, "
                    f"disabled={name in disabled}"
                )
        # An alert already active cannot be attributed to this scenario's faults: wait (within
        # the preflight deadline) until the alerts it names have resolved, e.g. after the
        # previous scenario.
        named = set(scenario.expect.alerts.forbid) | set(scenario.expect.alerts.fire)
        started = time.monotonic()
        while named:
            active = await self._active_alerts()
            result.preflight["active_alerts"] = sorted(active)
            if not named & active:
                break
            result.preflight["waited_for_alerts_s"] = round(time.monotonic() - started, 1)
            await anyio.sleep(1.0)

    async def _active_alerts(self) -> set[str]:
        url = f"{self.target.prometheus_url}/api/v1/alerts"
        async with httpx.AsyncClient(timeout=5) as client:
            try:
                body = (await client.get(url)).json()
            except (httpx.HTTPError, ValueError) as exc:
                raise PhaseFailed(f"GET {url}: {exc}") from exc
        return {a["labels"]["alertname"] for a in body.get("data", {}).get("alerts", [])}

    async def _faults(
        self,
        result: ScenarioResult,
        view: RunView,
        checks: list[Check],
        scenario: Scenario,
        runner: FaultRunner,
        drivers: list[FaultDriver],
        healed: dict[str, HealOutcome],
    ) -> None:
        """Inject at each fault's offset, hold it, heal it; inject then observe phases."""
        records = {r.key: r for r in result.faults}
        applied = {d.key: anyio.Event() for d in drivers}
        finished = anyio.Event()
        failures: list[str] = []

        async def lifecycle(driver: FaultDriver, start: float, duration: float) -> None:
            record = records[driver.key]
            try:
                await anyio.sleep(start)
                record.read_back = await runner.inject(driver)
                record.applied_at = time.time()
            except FaultApplyError as exc:
                record.error = str(exc)
                failures.append(str(exc))
                return
            finally:
                applied[driver.key].set()
            await driver.hold(duration)
            outcome = await runner.heal(driver)
            healed[driver.key] = outcome
            record.heal = outcome.as_dict()
            if len(healed) == len(drivers):
                finished.set()

        last_start = max(f.start for f in scenario.faults)
        async with anyio.create_task_group() as tg:
            for driver, fault in zip(drivers, scenario.faults, strict=True):
                tg.start_soon(lifecycle, driver, fault.start, fault.duration)

            async def all_applied() -> None:
                for event in applied.values():
                    await event.wait()
                if failures:
                    raise PhaseFailed("; ".join(failures))

            await self._phase(
                result, view, checks, "inject", last_start + scenario.timeouts.inject, all_applied
            )
            await self._phase(
                result,
                view,
                checks,
                "observe",
                scenario.fault_window + scenario.timeouts.heal + 10,
                finished.wait,
            )

    async def _heal_all(
        self,
        runner: FaultRunner,
        drivers: list[FaultDriver],
        healed: dict[str, HealOutcome],
        result: ScenarioResult,
    ) -> None:
        """Heal whatever is not yet proven healed (only after a failure or interrupt)."""
        records = {r.key: r for r in result.faults}
        keys = {e["key"] for e in self.journal.entries()}
        for driver in drivers:
            if driver.key in healed and healed[driver.key].healed:
                continue
            if driver.key not in keys and driver.key not in healed:
                continue  # never applied
            outcome = await runner.heal(driver)
            healed[driver.key] = outcome
            records[driver.key].heal = outcome.as_dict()
        left = [d.key for d in drivers if d.key in {e["key"] for e in self.journal.entries()}]
        if left:
            raise PhaseFailed(f"faults still in the journal after heal: {', '.join(left)}")

    async def _recover(
        self, scenario: Scenario, workload: Workload | None, checks: list[Check], view: RunView
    ) -> None:
        """Traffic keeps flowing until every check's recovery condition holds; then drain."""
        drain = min(scenario.workload.drain, scenario.timeouts.recover / 2)
        with anyio.move_on_after(max(1.0, scenario.timeouts.recover - drain - 1)):
            async with anyio.create_task_group() as tg:
                for check in checks:
                    tg.start_soon(check.settle, view)
        if workload is not None:
            await workload.stop_and_drain(drain)
