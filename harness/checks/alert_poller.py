"""One poller per scenario run: Prometheus's active alerts every evaluation interval, and what
Alertmanager holds for each alert once it fires, shared by every alert check of the run.

Polling gives the live state (for settling and preflight); the verdicts rest on the `ALERTS`
series Prometheus writes at each evaluation, which a polling gap cannot hide.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from harness.errors import AdapterError
from harness.prometheus_alerts import ActiveAlert, active_alerts

if TYPE_CHECKING:
    from harness.alertmanager import AlertmanagerAPI, HeldAlert
    from harness.prometheus import PrometheusAPI

State = Literal["inactive", "pending", "firing"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Transition(_Record):
    """A change of an alert's state as polling saw it, with the active instances then."""

    state: State
    at: float
    labels: list[dict[str, str]] = Field(default_factory=list)
    active_at: list[str | None] = Field(default_factory=list)


class Sighting(_Record):
    """An alert as Alertmanager held it when polling looked (each distinct state once)."""

    at: float | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    state: str = ""
    silenced_by: list[str] = Field(default_factory=list)
    inhibited_by: list[str] = Field(default_factory=list)
    receivers: list[str] = Field(default_factory=list)
    starts_at: str | None = None

    @classmethod
    def of(cls, at: float, held: HeldAlert) -> Sighting:
        return cls(at=at, **asdict(held))

    @property
    def suppressed(self) -> bool:
        return self.state != "active" or bool(self.inhibited_by or self.silenced_by)


class AlertTrace(_Record):
    """What polling saw of one alert name."""

    state: State = "inactive"
    transitions: list[Transition] = Field(default_factory=list)
    held: list[Sighting] = Field(default_factory=list)  # Alertmanager sightings

    def first_held(self) -> Sighting | None:
        return self.held[0] if self.held else None


class AlertPoller:
    """Polls once per interval for all the alert names a scenario cares about."""

    def __init__(
        self,
        prometheus: PrometheusAPI,
        alertmanager: AlertmanagerAPI,
        names: set[str],
        interval: float,
    ):
        self.prometheus = prometheus
        self.alertmanager = alertmanager
        self.interval = max(0.5, interval)
        self.traces: dict[str, AlertTrace] = {name: AlertTrace() for name in names}
        self.errors: list[str] = []
        self.polls = 0

    def trace(self, name: str) -> AlertTrace:
        return self.traces.setdefault(name, AlertTrace())

    async def run(self) -> None:
        while True:
            await self.poll()
            await anyio.sleep(self.interval)

    async def poll(self) -> None:
        now = time.time()
        try:
            active = await active_alerts(self.prometheus)
        except AdapterError as exc:
            self.errors.append(f"{time.strftime('%H:%M:%S')} {exc}")
            return
        self.polls += 1
        by_name: dict[str, list[ActiveAlert]] = {}
        for alert in active:
            by_name.setdefault(alert.name, []).append(alert)
        for name, trace in self.traces.items():
            mine = by_name.get(name, [])
            state: State = (
                "firing"
                if any(a.state == "firing" for a in mine)
                else ("pending" if mine else "inactive")
            )
            if state != trace.state:
                trace.transitions.append(
                    Transition(
                        state=state,
                        at=now,
                        labels=[a.labels for a in mine],
                        active_at=[a.active_at for a in mine],
                    )
                )
                trace.state = state
            if state == "firing":
                await self._look_in_alertmanager(name, trace, now)

    async def _look_in_alertmanager(self, name: str, trace: AlertTrace, now: float) -> None:
        """Record each distinct Alertmanager state of a firing alert (active, suppressed)."""
        try:
            held = await self.alertmanager.alerts(name)
        except AdapterError as exc:
            self.errors.append(f"{time.strftime('%H:%M:%S')} {exc}")
            return
        for alert in held:
            entry = Sighting.of(now, alert)
            last = trace.held[-1] if trace.held else None
            if last is None or (last.state, last.inhibited_by, last.silenced_by) != (
                entry.state,
                entry.inhibited_by,
                entry.silenced_by,
            ):
                trace.held.append(entry)

    def active(self) -> set[str]:
        return {name for name, t in self.traces.items() if t.state != "inactive"}
