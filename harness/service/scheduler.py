"""The scheduler loop: asks the pure schedule module which schedules are due and starts their
runs through the RunManager.

Each tick covers (last_checked, now] per schedule, with last_checked kept in the store, so fire
times that fell while the service was down come back as `missed` (run late only when the
schedule says catch_up, which the schedule module decides). Concurrency: `forbid` skips (and
records) a fire whose target is under test; `queue` starts the run queued behind it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import structlog

from harness.errors import HarnessError, describe
from harness.service.manager import RunManager, RunPlan, TargetBusy
from harness.service.metrics import ServiceMetrics
from harness.service.schedules import Schedule, due
from harness.service.store import Store

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
                self.tick(time.time())
            except Exception:  # one bad tick must not end the schedules
                log.exception("scheduler_tick_failed")
            await anyio.sleep(self.tick_s)

    def tick(self, now: float) -> list[dict[str, Any]]:
        """One pass over every schedule; the events it recorded."""
        events = []
        for row in self.store.schedules():
            schedule = Schedule.model_validate(row["spec"])
            last = row["last_checked"] or row["created_at"]
            if schedule.enabled and now > last:
                decision = due(schedule, _utc(last), _utc(now))
                for missed in decision.missed:
                    why = "its time passed while the service was not running"
                    events.append(
                        self._record(schedule.name, "missed", missed.timestamp(), None, why)
                    )
                if decision.run_at is not None:
                    events.append(self._fire(schedule, decision.run_at.timestamp()))
            self.store.set_last_checked(schedule.name, now)
        return events

    def _record(
        self, name: str, outcome: str, at: float, run_id: str | None, detail: str
    ) -> dict[str, Any]:
        self.store.add_schedule_event(name, outcome, scheduled_for=at, run_id=run_id, detail=detail)
        self.metrics.schedule_runs.labels(name, outcome).inc()
        log.info(
            "schedule_" + outcome, schedule=name, scheduled_for=at, run_id=run_id, detail=detail
        )
        return {"schedule": name, "outcome": outcome, "scheduled_for": at, "run_id": run_id}

    def _fire(self, schedule: Schedule, at: float) -> dict[str, Any]:
        try:
            plan = self.planner(schedule)
            run_id = self.manager.start(plan, queue=schedule.concurrency == "queue")
        except TargetBusy as exc:
            return self._record(schedule.name, "skipped", at, None, str(exc))
        except HarnessError as exc:  # PlanProblem, UnknownTarget, FileProblems, ...
            return self._record(schedule.name, "skipped", at, None, f"cannot run: {exc}")
        except Exception as exc:  # recorded as the fire's outcome
            return self._record(schedule.name, "skipped", at, None, f"cannot run: {describe(exc)}")
        return self._record(schedule.name, "fired", at, run_id, "")
