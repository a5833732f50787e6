"""A run in progress as the API shows it: status, the phase of each scenario in flight, the
results so far, and an append-only event list that server-sent events replay and follow."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from harness.evidence.record import Phase, ScenarioResult


def result_summary(result: ScenarioResult) -> dict[str, Any]:
    return {
        "scenario_id": result.scenario_id,
        "verdict": result.verdict,
        "reason": result.reason,
        "target": result.target,
        "started_at": result.started_at,
        "ended_at": result.ended_at,
        "checks": [
            {"name": c.name, "kind": c.kind, "status": c.status, "summary": c.summary}
            for c in result.checks
        ],
    }


@dataclass
class LiveRun:
    run_id: str
    scenario_ids: list[str]
    row: dict[str, Any] = field(default_factory=dict)
    """The run's stored row as of its start, kept current here: status reads of a run in
    progress never touch the store."""
    status: str = "queued"
    phases: dict[str, str] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    cancel_scope: anyio.CancelScope | None = None
    cancel_reason: str | None = None
    done: anyio.Event = field(default_factory=anyio.Event)
    saved: int = 0
    """how many of `results` are in the store (written in order, off the event loop)"""
    saving: anyio.Lock = field(default_factory=anyio.Lock)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    def emit(self, kind: str, **data: Any) -> None:
        self.events.append({"event": kind, "at": time.time(), **data})
        self._changed.set()
        self._changed = anyio.Event()

    async def changed(self, seen: int) -> None:
        """Wait until there are more than `seen` events, or the run is done."""
        while len(self.events) <= seen and not self.done.is_set():
            await self._changed.wait()

    def on_phase(self, scenario_id: str, phase: Phase) -> None:
        self.phases[scenario_id] = phase.value
        self.emit("phase", scenario=scenario_id, phase=phase.value)

    def on_result(self, result: ScenarioResult) -> None:
        self.phases.pop(result.scenario_id, None)
        summary = result_summary(result)
        self.results.append(summary)
        self.emit("result", **summary)

    def cancel(self, reason: str) -> None:
        """Ask the run to stop (it heals, then concludes); returns at once."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
        if self.cancel_scope is not None:
            self.cancel_scope.cancel()

    def progress(self) -> dict[str, Any]:
        return {
            "current": [{"scenario": s, "phase": p} for s, p in self.phases.items()],
            "finished": len(self.results),
            "total": len(self.scenario_ids),
            "results": self.results,
            "cancel_requested": self.cancel_reason,
        }
