"""The service's parts wired together: settings → store, targets, catalogue, auth, metrics, run
manager, scheduler; and what every API call shares (turning a request into a run plan)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import structlog

from harness.contract import Contract, load_contract
from harness.errors import HarnessError
from harness.paths import deploy_dir
from harness.runner import execute
from harness.scenario import Scenario, UnknownScenarios, load_scenarios, select_scenarios
from harness.service.auth import Auth, load_tokens
from harness.service.manager import RunFn, RunManager, RunPlan
from harness.service.metrics import ServiceMetrics
from harness.service.scheduler import Scheduler
from harness.service.schedules import GuardSpec, Schedule, load_schedules
from harness.service.settings import ServiceSettings
from harness.service.store import Store
from harness.service.targets import KnownTargets, UnknownTarget
from harness.validate import cross_check

log = structlog.get_logger("service")


class PlanProblem(HarnessError):
    """A run request names something that cannot run; `field` is the request field to blame."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class Service:
    """Everything `harness serve` holds; `running()` is its lifetime (runs and scheduler)."""

    def __init__(self, settings: ServiceSettings, *, run_fn: RunFn = execute):
        self.settings = settings
        self.config = settings.service_config()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.runs_dir().mkdir(parents=True, exist_ok=True)
        self.auth = Auth(
            load_tokens(settings.tokens_file, settings.tokens), settings.open_reads_on_loopback
        )
        self.targets = KnownTargets(self.config.run_dir or Path(), self.config.targets)
        self.catalogue: dict[str, tuple[Scenario, Path]] = load_scenarios(
            self.config.scenarios or Path()
        )
        self.contract: Contract = load_contract(self.config.contract)
        self.file_schedules: list[Schedule] = (
            load_schedules(self.config.schedules) if self.config.schedules else []
        )
        self.store = Store(settings.db_url())
        self.metrics = ServiceMetrics(self.targets.all)
        self.manager = RunManager(
            self.store,
            self.metrics,
            settings.runs_dir(),
            self.contract,
            run_fn=run_fn,
            webhook_url=settings.webhook_url,
            public_url=settings.public_url,
            write_reports=settings.write_reports,
        )
        self.scheduler = Scheduler(
            self.store, self.manager, self.metrics, self.plan_schedule, settings.scheduler_tick
        )

    # --- lifetime --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        """Recover what a dead service left, load file schedules, then run until closed;
        closing cancels the runs (each heals) and marks them interrupted."""
        recovered = await self.manager.recover()
        if recovered:
            log.warning("runs_recovered", runs=[r["run_id"] for r in recovered])
        self.sync_file_schedules()
        for name, at in self.store.last_passed().items():
            self.metrics.schedule_last_success.labels(name).set(at)
        async with anyio.create_task_group() as tg:
            self.manager.bind(tg)
            tg.start_soon(self.scheduler.run)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()
        self.store.close()

    def sync_file_schedules(self) -> None:
        """The schedules file is authoritative for the schedules it declares: each is
        created or replaced (keeping its last check), and one removed from the file is
        removed from the store."""
        declared = {s.name for s in self.file_schedules}
        for schedule in self.file_schedules:
            self.store.put_schedule(schedule.name, schedule.model_dump(mode="json"), "file")
        for row in self.store.schedules():
            if row["source"] == "file" and row["name"] not in declared:
                self.store.delete_schedule(row["name"])

    # --- requests → plans ------------------------------------------------------------------

    def choose(self, scenarios: list[str] | str, variants: bool = False) -> list[Scenario]:
        ids = [] if scenarios == "all" else list(scenarios)
        try:
            return select_scenarios(self.catalogue, ids, scenarios == "all", variants)
        except UnknownScenarios as exc:
            raise PlanProblem("scenarios", str(exc)) from None

    async def plan(
        self,
        scenarios: list[str] | str,
        *,
        target: str | None = None,
        slots: int | None = None,
        guards: list[GuardSpec] | None = None,
        started_by: str = "",
        schedule: str | None = None,
        variants: bool = False,
        request: dict[str, Any] | None = None,
    ) -> RunPlan:
        """A run plan, or PlanProblem naming the field; the same checks `harness run` makes."""
        chosen = self.choose(scenarios, variants)
        try:
            targets = self.targets.resolve(target, slots)
        except UnknownTarget as exc:
            raise PlanProblem("slots" if "slot" in str(exc) else "target", str(exc)) from None
        subset = {s.id: self.catalogue[s.id] for s in chosen}
        problems = await anyio.to_thread.run_sync(
            cross_check, subset, deploy_dir(), self.contract, targets[0]
        )
        if problems:
            raise PlanProblem("scenarios", "; ".join(str(p) for p in problems[:10]))
        return RunPlan(
            scenarios=chosen,
            targets=targets,
            guards=list(guards or []),
            started_by=started_by,
            schedule=schedule,
            request=request or {},
        )

    def plan_schedule(self, schedule: Schedule) -> RunPlan:
        """The scheduler's plan (synchronous: it runs inside a tick); no cross-check, the
        schedule was checked when it was saved."""
        return RunPlan(
            scenarios=self.choose(schedule.scenarios),
            targets=self.targets.resolve(schedule.target, schedule.slots),
            guards=list(schedule.guards),
            started_by=f"schedule {schedule.name}",
            schedule=schedule.name,
            request={"schedule": schedule.name, "at": time.time()},
        )
