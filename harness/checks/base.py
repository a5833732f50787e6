"""The check interface: observe on the wire during the run, then judge with a pure function.

A check's `collect` talks to Prometheus, Alertmanager, the receiver or NATS and returns plain
observations; its `judge` turns observations and the expectation into a `CheckResult` without
any I/O, so unit tests can feed it synthetic data. A check that cannot be evaluated (no data, an
endpoint down, a timeout) is `error`, never `pass`: a scenario passes only on what was actually
observed in that run.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from harness.errors import AdapterError, HarnessError
from harness.evidence.record import CheckResult, Phase, PhaseSpan, ScenarioResult, Status

if TYPE_CHECKING:
    from harness.alertmanager import AlertmanagerAPI
    from harness.checks.alert_poller import AlertPoller
    from harness.config import Target
    from harness.contract import Contract
    from harness.notifications import ReceiverAPI
    from harness.plan import ScenarioPlan
    from harness.prometheus import PrometheusAPI
    from harness.scenario import Scenario
    from harness.workload.ledger import LedgerSummary

__all__ = ["Check", "CheckResult", "RunView", "Window", "result"]


@dataclass(frozen=True)
class Window:
    """A closed time interval (Unix seconds)."""

    start: float
    end: float

    @property
    def length(self) -> float:
        return max(0.0, self.end - self.start)


class RunView:
    """What checks may see of a scenario's run: its live record (phases, faults), its plan on
    the target's clock, the contract, and the adapters to the target's components."""

    def __init__(
        self,
        *,
        target: Target,
        scenario: Scenario,
        plan: ScenarioPlan,
        contract: Contract,
        result: ScenarioResult,
        prometheus: PrometheusAPI,
        alertmanager: AlertmanagerAPI,
        receiver: ReceiverAPI | None,
        alerts: AlertPoller,
        ledger: Callable[[], LedgerSummary] | None = None,
    ):
        self.target = target
        self.scenario = scenario
        self.plan = plan
        self.contract = contract
        self.result = result
        self.prometheus = prometheus
        self.alertmanager = alertmanager
        self.receiver = receiver
        self.alerts = alerts
        self.ledger = ledger
        self._ended: dict[Phase, anyio.Event] = {}

    def span(self, phase: Phase) -> PhaseSpan | None:
        return self.result.span(phase)

    def baseline(self) -> Window | None:
        span = self.span(Phase.BASELINE)
        return Window(span.start, span.end) if span and span.end else None

    def fault_window(self) -> Window | None:
        window = self.result.fault_window()
        return Window(*window) if window else None

    def healed_at(self) -> float | None:
        """When the last fault was proven healed (the end of the fault window), if all were."""
        faults = [f for f in self.result.faults if f.applied_at]
        if not faults or not all(f.heal and f.heal.healed for f in faults):
            return None
        return max(f.heal.at for f in faults if f.heal)

    def started(self) -> float:
        """Where observations start: the baseline (preflight made sure the scenario's alerts
        were inactive by then), else the scenario's start."""
        span = self.span(Phase.BASELINE) or self.span(Phase.PREFLIGHT)
        return span.start if span else self.result.started_at

    def _event(self, phase: Phase) -> anyio.Event:
        return self._ended.setdefault(phase, anyio.Event())

    async def wait_ended(self, phase: Phase) -> PhaseSpan:
        await self._event(phase).wait()
        span = self.span(phase)
        assert span is not None
        return span

    def mark_ended(self, phase: Phase) -> None:
        self._event(phase).set()


def result(
    check: Check, status: Status, summary: str, evidence: dict[str, Any] | None = None
) -> CheckResult:
    return CheckResult(
        name=check.name, kind=check.kind, status=status, summary=summary, evidence=evidence or {}
    )


class Check(ABC):
    """Observes the run; `observe` runs concurrently from baseline to the end of recovery."""

    kind: ClassVar[str] = "check"

    def __init__(self, name: str):
        self.name = name
        self.started_at = time.time()

    async def on_phase(self, phase: Phase, run: RunView) -> None:
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
    async def collect(self, run: RunView) -> Any:
        """Everything the judge needs, read from the wire after recovery (may raise an
        AdapterError: the verdict is then `error`, naming what could not be consulted)."""

    @abstractmethod
    def judge(self, observed: Any) -> CheckResult:
        """The pure verdict on what `collect` returned."""

    async def verdict(self, run: RunView) -> CheckResult:
        try:
            observed = await self.collect(run)
        except AdapterError as exc:
            outcome = self.error(f"could not consult the target: {exc}")
        except HarnessError as exc:
            outcome = self.error(str(exc))
        else:
            outcome = self.judge(observed)
        return outcome.model_copy(update={"started_at": self.started_at, "ended_at": time.time()})

    def error(self, summary: str, **evidence: Any) -> CheckResult:
        return result(self, "error", summary, evidence)
