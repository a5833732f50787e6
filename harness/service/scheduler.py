"""The scheduler loop: asks the pure schedule module which schedules are due and starts their
runs through the RunManager.

Each tick covers (last_checked, now] per schedule, with last_checked kept in the store, so fire
times that fell while the service was down come back as `missed` (run late only when the
schedule says catch_up, which the schedule module decides). Concurrency: `forbid` skips (and
records) a fire whose target is under test; `queue` starts the run queued behind it. While
the safety lever is engaged every fire is skipped and recorded. The schedule arithmetic and the
store run off the event loop (a worker thread); every fire and skip is in the audit log as
`scheduler`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import structlog

from harness.errors import HarnessError, describe
from harness.service.manager import Refused, RunManager, RunPlan, TargetBusy
from harness.service.metrics import ServiceMetrics
from harness.service.schedules import Decision, Schedule, due
from harness.service.store import Audit, Store

log = structlog.get_logger("service.scheduler")

Planner = Callable[[Schedule], RunPlan]
"""Turns a schedule into a run plan (scenarios, targets, guards); raises ValueError when it
names something the service does not know."""


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Scheduler:
    def __init__(
        self,
        store: Store,
        manager: RunManager,
        metrics: ServiceMetrics,
        planner: Planner,
        tick: float = 1.0,
    ):
        self.store = store
        self.manager = manager
        self.metrics = metrics
        self.planner = planner
        self.tick_s = tick

    async def run(self) -> None:
        while True:
            try:
                await self.tick(time.time())
            except Exception:  # one bad tick must not end the schedules
                log.exception("scheduler_tick_failed")
            await anyio.sleep(self.tick_s)

    def _decide(self, now: float) -> list[tuple[Schedule, Decision | None]]:
        """Every schedule's decision for (last_checked, now], marked checked (in a thread)."""
        decisions: list[tuple[Schedule, Decision | None]] = []
        for row in self.store.schedules():
            schedule = Schedule.model_validate(row["spec"])
            last = row["last_checked"] or row["created_at"]
            decision = None
            if schedule.enabled and now > last:
                decision = due(schedule, _utc(last), _utc(now))
            decisions.append((schedule, decision))
            self.store.set_last_checked(schedule.name, now)
        return decisions

    async def tick(self, now: float) -> list[dict[str, Any]]:
        """One pass over every schedule; the events it recorded."""
        events = []
        for schedule, decision in await anyio.to_thread.run_sync(self._decide, now):
            if decision is None:
                continue
            for missed in decision.missed:
                why = "its time passed while the service was not running"
                events.append(
                    await self._record(schedule.name, "missed", missed.timestamp(), None, why)
                )
            if decision.run_at is not None:
                events.append(await self._fire(schedule, decision.run_at.timestamp()))
        return events

    async def _record(
        self, name: str, outcome: str, at: float, run_id: str | None, detail: str
    ) -> dict[str, Any]:
        def write() -> None:
            self.store.add_schedule_event(
                name, outcome, scheduled_for=at, run_id=run_id, detail=detail
            )
            if outcome != "missed":
                self.store.audit(Audit("scheduler", f"schedule.{outcome}", name,
                                       outcome="ok" if outcome == "fired" else "denied",
                                       detail=run_id or detail))  # fmt: skip

        await anyio.to_thread.run_sync(write)
        self.metrics.schedule_runs.labels(name, outcome).inc()
        log.info(
            "schedule_" + outcome, schedule=name, scheduled_for=at, run_id=run_id, detail=detail
        )
        return {"schedule": name, "outcome": outcome, "scheduled_for": at, "run_id": run_id}

    async def _fire(self, schedule: Schedule, at: float) -> dict[str, Any]:
        try:
            plan = await anyio.to_thread.run_sync(self.planner, schedule)  # reads target files
            run_id = await self.manager.start(plan, queue=schedule.concurrency == "queue")
        except (TargetBusy, Refused) as exc:
            return await self._record(schedule.name, "skipped", at, None, str(exc))
        except HarnessError as exc:  # PlanProblem, UnknownTarget, FileProblems, ...
            return await self._record(schedule.name, "skipped", at, None, f"cannot run: {exc}")
        except Exception as exc:  # recorded as the fire's outcome
            detail = f"cannot run: {describe(exc)}"
            return await self._record(schedule.name, "skipped", at, None, detail)
        return await self._record(schedule.name, "fired", at, run_id, "")
