"""One poller per scenario run: Prometheus's active alerts every evaluation interval, and what
Alertmanager holds for each alert once it fires, shared by every alert check of the run.

Polling gives the live state (for settling and preflight); the verdicts rest on the `ALERTS`
series Prometheus writes at each evaluation, which a polling gap cannot hide.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from harness.alertmanager import AlertmanagerAPI, HeldAlert
from harness.errors import AdapterError
from harness.prometheus import PrometheusAPI

State = str  # "inactive" | "pending" | "firing"


@dataclass
class AlertTrace:
    """What polling saw of one alert name."""

    state: State = "inactive"
    transitions: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)  # Alertmanager sightings

    def first_held(self) -> dict[str, Any] | None:
        return self.held[0] if self.held else None


def _held_dict(at: float, held: HeldAlert) -> dict[str, Any]:
    return {
        "at": at,
        "labels": held.labels,
        "state": held.state,
        "silenced_by": held.silenced_by,
        "inhibited_by": held.inhibited_by,
        "receivers": held.receivers,
        "starts_at": held.starts_at,
    }


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
            active = await self.prometheus.alerts()
        except AdapterError as exc:
            self.errors.append(f"{time.strftime('%H:%M:%S')} {exc}")
            return
        self.polls += 1
        by_name: dict[str, list[dict[str, Any]]] = {}
        for alert in active:
            by_name.setdefault(alert["labels"].get("alertname", ""), []).append(alert)
        for name, trace in self.traces.items():
            mine = by_name.get(name, [])
            state = (
                "firing"
                if any(a["state"] == "firing" for a in mine)
                else ("pending" if mine else "inactive")
            )
            if state != trace.state:
                trace.transitions.append(
                    {
                        "state": state,
                        "at": now,
                        "labels": [a["labels"] for a in mine],
                        "active_at": [a.get("activeAt") for a in mine],
                    }
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
            entry = _held_dict(now, alert)
            last = trace.held[-1] if trace.held else None
            if last is None or (last["state"], last["inhibited_by"], last["silenced_by"]) != (
                entry["state"],
                entry["inhibited_by"],
                entry["silenced_by"],
            ):
                trace.held.append(entry)

    def active(self) -> set[str]:
        return {name for name, t in self.traces.items() if t.state != "inactive"}
