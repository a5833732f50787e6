"""The check interface: a check observes the run's phases and returns a verdict with evidence.

A check that cannot be evaluated (no data, endpoint down, timeout) returns `error`, never
`pass`: a scenario passes only on what was actually observed in that run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import anyio

Status = Literal["pass", "fail", "error"]


@dataclass
class CheckResult:
    """One check's verdict, the reason in one line, and everything it rests on."""

    name: str
    kind: str
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PhaseWindow:
    """Wall-clock bounds of a phase (Unix seconds); `end` is None while it runs."""

    name: str
    start: float
    end: float | None = None


class RunView:
    """What checks may see of the run: its phases so far and the target (read-only)."""

    def __init__(self, target: Any, scenario: Any):
        self.target = target
        self.scenario = scenario
        self.phases: dict[str, PhaseWindow] = {}
        self.faults: list[Any] = []  # FaultRecords, filled as faults are applied and healed
        self._ended: dict[str, anyio.Event] = {}

    def window(self, name: str) -> PhaseWindow | None:
        return self.phases.get(name)

    def _event(self, name: str) -> anyio.Event:
        return self._ended.setdefault(name, anyio.Event())

    async def wait_ended(self, name: str) -> PhaseWindow:
        """Wait until phase `name` has ended (successfully or not)."""
        await self._event(name).wait()
        return self.phases[name]

    def mark_ended(self, name: str, at: float) -> None:
        self.phases[name].end = at
        self._event(name).set()


class Check(ABC):
    """Observes the run; `observe` runs concurrently from baseline to the end of recovery."""

    kind: str = "check"

    def __init__(self, name: str):
        self.name = name

    async def on_phase(self, phase: str, run: RunView) -> None:
        """Called as each phase starts (e.g. to snapshot a baseline)."""
        return

    async def observe(self, run: RunView) -> None:
        """Background polling while the scenario runs; cancelled when the run ends."""
        return

    async def settle(self, run: RunView) -> None:
        """During recovery: return once this check's recovery condition holds (or cannot
        any more); the recover phase waits for every check, bounded by its deadline."""
        return

    @abstractmethod
    async def verdict(self, run: RunView) -> CheckResult:
        """The result, computed after recovery from what was observed."""

    def error(self, summary: str, **evidence: Any) -> CheckResult:
        return CheckResult(self.name, self.kind, "error", summary, evidence)
