"""Game-day schedules: the model, the YAML loader, and when each schedule fires.

Pure logic (no clock, no I/O but reading the schedule file), so every scheduling decision is
unit-tested with fixed instants; the service's scheduler calls `due` on each tick.

Time rules, chosen to be what a cron user expects and to stay correct across DST changes:

- cron expressions (5 fields, Vixie-cron day-of-month/day-of-week OR) match the wall clock of
  the schedule's zone;
- a wall-clock time the clock skips (spring forward) fires at the moment of the jump; a time the
  clock shows twice (fall back) fires once, at its first occurrence;
- a window is half-open, [start, end) on the same wall clock, and a fire time is inside it only
  if the latest jitter still starts the run before `end`;
- blackout dates are calendar dates in the schedule's zone, judged on the fire time;
- every datetime in and out is timezone-aware; results are in UTC (cron is evaluated in the
  schedule's zone): per PEP 495 an aware datetime in a repeated hour compares unequal to every
  datetime of another zone, which would break equality and set membership in the scheduler and
  the store. Show them with `.astimezone(schedule.zone)`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.config import Strict
from harness.durations import Duration, format_duration
from harness.yamlfile import FileProblems, Problem, load_model, locate, parse_yaml

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order

DEFAULT_GRACE = timedelta(minutes=5)
"""How late a tick may see a fire time and still run it (a restart, a slow tick)."""
HORIZON = timedelta(days=366)
"""`next_fire` looks this far ahead: a yearly game-day still has a next fire."""
MAX_CANDIDATES = 50_000
"""`next_fire` also gives up after this many cron times rejected by windows and blackouts."""
MAX_LISTED = 1_000
"""`due` lists at most this many (the newest) cron times after a long outage."""

OUTSIDE_WINDOW = "outside window"
DISABLED = "schedule disabled"


def _yaml_time(value: object) -> object:
    """YAML 1.1 reads an unquoted `10:00` as the base-60 integer 600 (and `10:00:00` as 36000);
    read such integers back as the time that was written, so `start: 10:00` works unquoted."""
    if isinstance(value, bool | float):
        raise ValueError('must be a time such as "10:00"')
    if isinstance(value, int):
        # A base-60 literal starts with 1-9, so h:mm is 60..1439 and h:mm:ss is 3600..86399.
        if 60 <= value < 24 * 60:
            return time(*divmod(value, 60))
        if 3600 <= value < 24 * 3600:
            hours, rest = divmod(value, 3600)
            return time(hours, *divmod(rest, 60))
        raise ValueError('must be a time such as "10:00"')
    return value


def _naive(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("window times are local to the schedule's timezone: drop the offset")
    return value


LocalTime = Annotated[time, BeforeValidator(_yaml_time), AfterValidator(_naive)]


_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _slug(value: str) -> str:
    """Names become metric label values, URLs and file names: keep them plain."""
    if not _SLUG.match(value):
        raise ValueError("must be a slug: lowercase letters, digits and '-', at most 63 characters")
    return value


def _cron(value: str) -> str:
    expr = " ".join(value.split())
    if not expr.startswith("@") and len(expr.split()) != 5:
        raise ValueError(
            "must have 5 fields (minute hour day-of-month month day-of-week), e.g. '0 10 * * tue'"
        )
    if not croniter.is_valid(expr):
        raise ValueError(f"invalid cron expression {expr!r}")
    try:
        croniter(expr, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterError as exc:
        raise ValueError(f"cron expression {expr!r} never matches a date") from exc
    return expr


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin"
        ) from exc
    return value


Slug = Annotated[str, AfterValidator(_slug)]
CronExpr = Annotated[str, AfterValidator(_cron)]
ZoneName = Annotated[str, AfterValidator(_zone)]


class StartWindow(Strict):
    """When a schedule may start runs: days of the week and a span of the zone's wall clock."""

    days: list[Day] = Field(min_length=1)
    start: LocalTime
    end: LocalTime

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: time, info: ValidationInfo) -> time:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError(
                f"must be after start ({start:%H:%M}); a window cannot span midnight: use two"
            )
        return end

    def length(self) -> timedelta:
        return datetime.combine(date.min, self.end) - datetime.combine(date.min, self.start)

    def admits(self, local: datetime, jitter: timedelta) -> bool:
        """Whether a run planned at naive wall-clock `local` starts inside, whatever its jitter."""
        if DAYS[local.weekday()] not in self.days:
            return False
        day = local.date()
        return datetime.combine(day, self.start) <= local < datetime.combine(day, self.end) - jitter


class GuardSpec(Strict):
    """A stop condition: the run aborts and heals when the alert fires or the PromQL returns a
    sample."""

    name: str = Field(min_length=1, max_length=100)
    alert: str | None = Field(None, min_length=1, max_length=200)
    promql: str | None = Field(None, min_length=1, max_length=2000)

    @field_validator("promql")
    @classmethod
    def _not_both(cls, promql: str | None, info: ValidationInfo) -> str | None:
        if promql is not None and info.data.get("alert") is not None:
            raise ValueError("give either alert or promql, not both")
        return promql

    @model_validator(mode="after")
    def _one_condition(self) -> GuardSpec:
        if self.alert is None and self.promql is None:
            raise ValueError("a guard needs an alert or a promql condition")
        return self


class Schedule(Strict):
    """A recurring game-day: which scenarios run where, when, and what stops them."""

    name: Slug
    cron: Annotated[CronExpr, Field(max_length=200)]
    timezone: Annotated[ZoneName, Field(max_length=100)] = "UTC"
    windows: list[StartWindow] = Field(default_factory=list, max_length=14)
    blackout: list[date] = Field(default_factory=list, max_length=400)
    jitter: Duration = Field(0.0, le=86400.0)
    concurrency: Literal["forbid", "queue"] = "forbid"
    catch_up: bool = False
    scenarios: list[Annotated[str, Field(min_length=1, max_length=100)]] | Literal["all"] = Field(
        max_length=200
    )
    target: str | None = Field(None, min_length=1, max_length=1000)
    slots: int | None = Field(None, ge=1, le=64)
    guards: list[GuardSpec] = Field(default_factory=list, max_length=20)
    enabled: bool = True

    @field_validator("jitter")
    @classmethod
    def _fits_windows(cls, jitter: float, info: ValidationInfo) -> float:
        for index, window in enumerate(info.data.get("windows") or []):
            if timedelta(seconds=jitter) >= window.length():
                length = format_duration(window.length().total_seconds())
                raise ValueError(f"must be shorter than windows[{index}] ({length})")
        return jitter

    @field_validator("scenarios")
    @classmethod
    def _some(cls, scenarios: list[str] | str) -> list[str] | str:
        if not scenarios:
            raise ValueError("name at least one scenario, or write all")
        return scenarios

    @field_validator("guards")
    @classmethod
    def _unique_guards(cls, guards: list[GuardSpec]) -> list[GuardSpec]:
        names = [g.name for g in guards]
        if len(names) != len(set(names)):
            raise ValueError("guard names must be unique within a schedule")
        return guards

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def jitter_span(self) -> timedelta:
        return timedelta(seconds=self.jitter)


class ScheduleFile(Strict):
    """The schedules YAML file a team keeps in git: `schedules: [...]`."""

    schedules: list[Schedule]


@dataclass
class Decision:
    """What one scheduler tick should do with a schedule.

    `run_at` is the fire time to run now (None: nothing to run); `missed` are eligible fire
    times that were not run because the service saw them too late; `skipped` are fire times
    that were not meant to run, with the reason. `truncated` says older times were not listed.
    """

    run_at: datetime | None
    missed: list[datetime] = field(default_factory=list)
    skipped: list[tuple[datetime, str]] = field(default_factory=list)
    truncated: bool = False


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: schedules need aware datetimes")
    return value.astimezone(UTC)


def _instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The first moment the zone's clock shows naive `local`; for a time the clock skips, the
    moment of the jump."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first
    # In a gap: before the jump the clock shows less than `local`, after it more. Transitions
    # fall on whole seconds, so bisecting POSIX seconds finds the jump exactly.
    low = int(local.replace(tzinfo=zone, fold=1).timestamp())
    high = int(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) > local:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _fires(schedule: Schedule, start: datetime, *, backward: bool) -> Iterator[datetime]:
    """Cron instants from naive wall-clock `start` (exclusive), each once, in order."""
    it = croniter(schedule.cron, start)
    previous: datetime | None = None
    while True:
        try:
            local = it.get_prev(datetime) if backward else it.get_next(datetime)
        except CroniterError:
            return
        instant = _instant(local, schedule.zone)
        if instant != previous:  # two skipped wall-clock times may share one jump
            yield instant
        previous = instant


def _fires_after(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """Cron instants > `after`, oldest first. The wall clock at `after` never maps later than
    `after`, so no fire between is passed over."""
    local = after.astimezone(schedule.zone).replace(tzinfo=None)
    return (f for f in _fires(schedule, local, backward=False) if f > after)


def _fires_until(schedule: Schedule, until: datetime) -> Iterator[datetime]:
    """Cron instants <= `until`, newest first. During the repeated hour the clock reads earlier
    than fires already past, so start from the end of that hour."""
    local = until.astimezone(schedule.zone)
    start = local.replace(tzinfo=None)
    if local.fold:
        start += local.replace(fold=0).utcoffset() - local.utcoffset()
    fires = _fires(schedule, start + timedelta(microseconds=1), backward=True)
    return (f for f in fires if f <= until)


def _exclusion(schedule: Schedule, moment: datetime, jitter: timedelta) -> str | None:
    """Why a run may not start at `moment` (None: it may)."""
    local = moment.astimezone(schedule.zone).replace(tzinfo=None)
    if local.date() in schedule.blackout:
        return f"blackout date {local.date().isoformat()}"
    if schedule.windows and not any(w.admits(local, jitter) for w in schedule.windows):
        return OUTSIDE_WINDOW
    return None


def next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    """The first cron time > `after` where a run may start (cron, windows and blackouts read
    on the schedule zone's clock), in UTC. None for a disabled schedule, or when none lies
    within HORIZON (366 days) or the first MAX_CANDIDATES cron times."""
    after = _utc(after)
    if not schedule.enabled:
        return None
    limit = after + HORIZON
    for count, fire in enumerate(_fires_after(schedule, after)):
        if fire > limit or count >= MAX_CANDIDATES:
            return None
        if _exclusion(schedule, fire, schedule.jitter_span) is None:
            return fire
    return None


def due(
    schedule: Schedule,
    last_checked: datetime,
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
) -> Decision:
    """Sort the cron times in (last_checked, now] into one to run, missed and skipped.

    Times outside the windows or on blackout dates are skipped (all of them, if the schedule
    is disabled). Of the rest, the latest runs if it is within `grace` of `now` — or at any
    age with `catch_up` — and `now` itself lies inside a window and off the blackout dates: a
    late run never starts at 3 a.m. because the service came back then. Every other one is
    missed: one late run stands for a whole outage, it is not replayed fire by fire.
    """
    last_checked, now = _utc(last_checked), _utc(now)
    newest_first: list[datetime] = []
    truncated = False
    for fire in _fires_until(schedule, now):
        if fire <= last_checked:
            break
        if len(newest_first) == MAX_LISTED:
            truncated = True
            break
        newest_first.append(fire)
    eligible: list[datetime] = []
    skipped: list[tuple[datetime, str]] = []
    for fire in reversed(newest_first):
        reason = _exclusion(schedule, fire, schedule.jitter_span)
        if reason is None and not schedule.enabled:
            reason = DISABLED
        if reason is None:
            eligible.append(fire)
        else:
            skipped.append((fire, reason))
    run_at = None
    if (
        eligible
        and (now - eligible[-1] <= grace or schedule.catch_up)
        and _exclusion(schedule, now, timedelta(0)) is None
    ):
        run_at = eligible.pop()
    return Decision(run_at=run_at, missed=eligible, skipped=skipped, truncated=truncated)


def jitter_for(schedule: Schedule, fire_at: datetime, seed: str) -> timedelta:
    """A delay in [0, jitter] for the run of `fire_at`: a hash of (seed, schedule name, fire
    instant), so a restarted service picks the same delay and `seed` (e.g. per installation)
    keeps several installations from starting in lockstep."""
    fire_at = _utc(fire_at)
    span_ms = round(schedule.jitter * 1000)
    if span_ms <= 0:
        return timedelta(0)
    key = f"{seed}\0{schedule.name}\0{fire_at.isoformat()}"
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return timedelta(milliseconds=digest % (span_ms + 1))


def load_schedules(path: Path | str) -> list[Schedule]:
    """The schedules of a YAML file; every problem (duplicate names too) with file, line, field."""
    path = Path(path)
    schedules = load_model(ScheduleFile, path).schedules
    names = [s.name for s in schedules]
    if len(names) == len(set(names)):
        return schedules
    _, root = parse_yaml(path.read_text(), str(path))  # only to position the duplicates
    first: dict[str, int] = {}
    problems = []
    for index, name in enumerate(names):
        line = locate(root, ["schedules", index, "name"])
        if name in first:
            problems.append(
                Problem(
                    str(path),
                    line,
                    f"schedules[{index}].name",
                    f"duplicate schedule name {name!r} (first defined on line {first[name]})",
                )
            )
        else:
            first[name] = line
    raise FileProblems(problems)
