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
from harness.service.auth import Auth, Credential, load_token_sources
from harness.service.datalock import DataDirLock
from harness.service.lever import Lever
from harness.service.manager import RunFn, RunManager, RunPlan
from harness.service.metrics import ServiceMetrics
from harness.service.scheduler import Scheduler
from harness.service.schedules import GuardSpec, Schedule, load_schedules
from harness.service.settings import ServiceConfig, ServiceSettings, readable_text
from harness.service.store import Store
from harness.service.targets import KnownTargets, UnknownTarget
from harness.validate import cross_check
from harness.yamlfile import FileProblems, Problem, locate, parse_yaml

log = structlog.get_logger("service")


class PlanProblem(HarnessError):
    """A run request names something that cannot run; `field` is the request field to blame."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class NoTokensFile(HarnessError):
    """A reload was asked of a service started without a tokens file."""


class Inputs:
    """Every file the service reads at start, loaded and cross-checked (FileProblems naming
    file, line and field): what `serve --check` validates without starting anything."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.config: ServiceConfig = settings.service_config()
        for path in self.config.targets:
            readable_text(path, "target file")
        if self.config.schedules:
            readable_text(self.config.schedules, "schedules file")
        self.token_sources = load_token_sources(settings.tokens_file, settings.tokens)
        self.tokens = [token for token, _ in self.token_sources]
        self.targets = KnownTargets(self.config.run_dir or Path(), self.config.targets)
        self.catalogue: dict[str, tuple[Scenario, Path]] = load_scenarios(
            self.config.scenarios or Path()
        )
        self.contract: Contract = load_contract(self.config.contract)
        self.file_schedules: list[Schedule] = (
            load_schedules(self.config.schedules) if self.config.schedules else []
        )
        self._check_schedule_references()

    def _check_schedule_references(self) -> None:
        """A file schedule naming a scenario or target the service does not know is refused
        at start, not skipped at 3 a.m."""
        if not self.file_schedules or self.config.schedules is None:
            return
        path = self.config.schedules
        _, root = parse_yaml(path.read_text(), str(path))
        problems = []
        for index, schedule in enumerate(self.file_schedules):
            if schedule.scenarios != "all":
                try:
                    select_scenarios(self.catalogue, list(schedule.scenarios), False, False)
                except UnknownScenarios as exc:
                    line = locate(root, ["schedules", index, "scenarios"])
                    problems.append(Problem(str(path), line, f"schedules[{index}].scenarios",
                                            str(exc)))  # fmt: skip
            if not self.targets.known(schedule.target):
                line = locate(root, ["schedules", index, "target"])
                problems.append(Problem(str(path), line, f"schedules[{index}].target",
                                        f"unknown target {schedule.target!r}; known: "
                                        f"{', '.join(self.targets.names())}"))  # fmt: skip
        if problems:
            raise FileProblems(problems)

    def prepare_data_dir(self) -> None:
        data_dir = self.settings.data_dir
        if data_dir.exists() and not data_dir.is_dir():
            why = "is a file; the data directory must be a directory"
            raise FileProblems([Problem(str(data_dir), None, "--data-dir", why)])
        try:
            self.settings.runs_dir().mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = f"cannot create it: {exc.strerror}"
            raise FileProblems([Problem(str(data_dir), None, "--data-dir", why)]) from None
        probe = data_dir / ".write-probe"
        try:
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            why = f"not writable: {exc.strerror}"
            raise FileProblems([Problem(str(data_dir), None, "--data-dir", why)]) from None


class Service:
    """Everything `harness serve` holds; `running()` is its lifetime (runs and scheduler)."""

    def __init__(self, settings: ServiceSettings, *, run_fn: RunFn = execute):
        self.settings = settings
        inputs = Inputs(settings)
        inputs.prepare_data_dir()
        self.config = inputs.config
        self.auth = Auth(
            inputs.tokens,
            settings.open_reads_on_loopback,
            {token.name: source for token, source in inputs.token_sources},
        )
        self.targets = inputs.targets
        self.catalogue = inputs.catalogue
        self.contract = inputs.contract
        self.file_schedules = inputs.file_schedules
        self.lock = DataDirLock(settings.data_dir)
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
            refusal=lambda: self.lever.refusal(),
        )
        self.lever = Lever(self.store, self.manager, self.targets.all)
        self.scheduler = Scheduler(
            self.store, self.manager, self.metrics, self.plan_schedule, settings.scheduler_tick
        )

    # --- lifetime --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        """Take the data directory, recover what a dead service left, load file schedules,
        then run until closed; closing cancels the runs (each heals) and marks them
        interrupted."""
        self.lock.acquire()
        try:
            async with self._running():
                yield self
        finally:
            self.lock.release()

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[Service]:
        recovered = await self.manager.recover()
        if recovered:
            log.warning("runs_recovered", runs=[r["run_id"] for r in recovered])
        await anyio.to_thread.run_sync(self.sync_file_schedules)
        for name, at in (await anyio.to_thread.run_sync(self.store.last_passed)).items():
            self.metrics.schedule_last_success.labels(name).set(at)
        async with anyio.create_task_group() as tg:
            self.manager.bind(tg)
            tg.start_soon(self.scheduler.run)
            if self.config.lever_guards:
                tg.start_soon(
                    self.lever.watch, self.config.lever_guards, self.config.lever_guard_interval
                )
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.store.close)

    async def heal_first(self) -> dict[str, Any]:
        """At SIGTERM, before connections drain: cancel every run and heal every fault on
        every known target (the emergency stop), within the settings' heal timeout."""
        with anyio.move_on_after(self.settings.heal_timeout) as scope:
            return await self.manager.stop_all(self.targets.all(), "service shutdown")
        log.error("heal_first_timeout", seconds=self.settings.heal_timeout,
                  cancelled=scope.cancelled_caught)  # fmt: skip
        return {"clean": False}

    def reload_tokens(self) -> dict[str, list[str]]:
        """Read the tokens file again (with HARNESS_TOKENS as at start) and take it at once,
        only if all of it is valid and it keeps an admin token: FileProblems naming file,
        line and field otherwise, and nothing changes. What changed, by token name (never a
        secret). Blocking: call it in a worker thread."""
        path = self.settings.tokens_file
        if path is None:
            raise NoTokensFile(
                "the service was started without a tokens file (--tokens-file, "
                "HARNESS_SERVE_TOKENS_FILE): there is nothing to reload"
            )
        sourced = load_token_sources(path, self.settings.tokens)
        if not any(token.role == "admin" for token, _ in sourced):
            why = ("no token has role admin: nobody could reload the tokens again or release "
                   "the safety lever; keep at least one")  # fmt: skip
            raise FileProblems([Problem(str(path), None, "tokens", why)])
        before = {c.name: c for c in self.auth.tokens}
        self.auth.replace([t for t, _ in sourced], {t.name: s for t, s in sourced})
        return token_changes(before, {c.name: c for c in self.auth.tokens})

    def sync_file_schedules(self) -> None:
        """The schedules file is authoritative for the schedules it declares: each is
        created or replaced (keeping its last check), and one removed from the file is
        removed from the store (blocking: call it in a worker thread)."""
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
        note: str = "",
    ) -> RunPlan:
        """A run plan, or PlanProblem naming the field; the same checks `harness run` makes."""
        chosen = self.choose(scenarios, variants)
        try:
            targets = await anyio.to_thread.run_sync(self.targets.resolve, target, slots)
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
            note=note,
        )

    def plan_schedule(self, schedule: Schedule) -> RunPlan:
        """The scheduler's plan (blocking, it reads the local slots' target files: the
        scheduler calls it in a worker thread); no cross-check, the schedule was checked when
        it was saved."""
        return RunPlan(
            scenarios=self.choose(schedule.scenarios),
            targets=self.targets.resolve(schedule.target, schedule.slots),
            guards=list(schedule.guards),
            started_by=f"schedule {schedule.name}",
            schedule=schedule.name,
            request={"schedule": schedule.name, "at": time.time()},
        )


def token_changes(
    before: dict[str, Credential], after: dict[str, Credential]
) -> dict[str, list[str]]:
    """Names added and removed, and `name (what)` for each changed token: its role, policy
    or secret (never the secret itself)."""
    changed = []
    for name in sorted(before.keys() & after.keys()):
        old, new = before[name], after[name]
        what = [
            aspect
            for aspect, differs in (
                ("role", old.role != new.role),
                ("policy", old.policy != new.policy),
                ("secret", old.verifier != new.verifier),
                ("source", old.source != new.source),
            )
            if differs
        ]
        if what:
            changed.append(f"{name} ({', '.join(what)})")
    return {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "changed": changed,
    }
