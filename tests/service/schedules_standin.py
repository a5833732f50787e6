"""A minimal stand-in for `harness.service.schedules` (written by another branch), used only
by these tests until that module is merged; the real one replaces it automatically.

It follows the agreed interface: Window, GuardSpec, Schedule, Decision, due, next_fire,
load_schedules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import Field, model_validator

from harness.config import Strict
from harness.durations import Duration
from harness.yamlfile import FileProblems, Problem, load_model

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
GRACE_S = 60.0


class Window(Strict):
    days: list[Day]
    start: time
    end: time


class GuardSpec(Strict):
    name: str = Field(min_length=1, max_length=200)
    alert: str | None = Field(None, min_length=1)
    promql: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> GuardSpec:
        if (self.alert is None) == (self.promql is None):
            raise ValueError("a guard names exactly one of alert or promql")
        return self


class Schedule(Strict):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    cron: str
    timezone: str = "UTC"
    windows: list[Window] = Field(default_factory=list)
    blackout: list[date] = Field(default_factory=list)
    jitter: Duration = 0
    concurrency: Literal["forbid", "queue"] = "forbid"
    catch_up: bool = False
    scenarios: list[str] | Literal["all"]
    target: str | None = None
    slots: int | None = Field(None, ge=1, le=8)
    guards: list[GuardSpec] = Field(default_factory=list)
    enabled: bool = True

    @model_validator(mode="after")
    def _cron(self) -> Schedule:
        if not croniter.is_valid(self.cron):
            raise ValueError(f"not a cron expression: {self.cron!r}")
        try:
            ZoneInfo(self.timezone)
        except Exception as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        return self


class SchedulesFile(Strict):
    schedules: list[Schedule]


@dataclass
class Decision:
    run_at: datetime | None
    missed: list[datetime] = field(default_factory=list)


def _fires(schedule: Schedule, after: datetime, until: datetime) -> list[datetime]:
    it = croniter(schedule.cron, after.astimezone(ZoneInfo(schedule.timezone)))
    out = []
    while True:
        nxt = it.get_next(datetime)
        if nxt > until:
            return out
        out.append(nxt)


def due(schedule: Schedule, last_checked: datetime, now: datetime) -> Decision:
    fires = _fires(schedule, last_checked, now)
    if not fires:
        return Decision(None, [])
    latest = fires[-1]
    if schedule.catch_up or (now - latest).total_seconds() <= GRACE_S:
        return Decision(latest, fires[:-1])
    return Decision(None, fires)


def next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    return croniter(schedule.cron, after.astimezone(ZoneInfo(schedule.timezone))).get_next(datetime)


def load_schedules(path: Path) -> list[Schedule]:
    schedules = load_model(SchedulesFile, path).schedules
    names = [s.name for s in schedules]
    twice = {n for n in names if names.count(n) > 1}
    if twice:
        raise FileProblems([Problem(str(path), None, "schedules", f"twice: {sorted(twice)}")])
    return schedules
