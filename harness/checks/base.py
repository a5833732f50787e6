"""The check interface: observe on the wire during the run, then judge with a pure function.

A check's `collect` talks to Prometheus, Alertmanager, the receiver or NATS and returns its
kind's evidence model filled with the raw observations (and the expectation); its `judge` turns
that evidence into a status and summary without any I/O, adding what it derived. The same judge
runs live and offline on stored evidence (`harness rejudge`), so unit tests feed it synthetic
data and a stored run is re-judged exactly. A check that cannot be evaluated (no data, an
endpoint down, a timeout) is `error`, never `pass`: a scenario passes only on what was actually
observed in that run.

A check class is also its kind's entry in `harness.checks.registry`: besides observing and
judging it says how its checks are built from a scenario, which coverage column it fills, what
raw data the report shows when it fails, its figure, what it proves for the coverage lists, and
how to read its evidence from older evidence files.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import anyio

from harness.errors import AdapterError, HarnessError
from harness.evidence.record import (
    CheckEvidence,
    CheckResult,
    Phase,
    PhaseSpan,
    ScenarioResult,
    Status,
)

if TYPE_CHECKING:
    from harness.alertmanager import AlertmanagerAPI
    from harness.checks.alert_poller import AlertPoller
    from harness.config import Target
    from harness.contract import Contract
    from harness.dataloss import History
    from harness.notifications import ReceiverAPI
    from harness.plan import ScenarioPlan
    from harness.prometheus import PrometheusAPI
    from harness.readback import StreamReader
    from harness.scenario import Scenario
    from harness.workload.ledger import LedgerSummary

__all__ = [
    "Check",
    "CheckEvidence",
    "CheckResult",
    "CoverageFacts",
    "JudgeContext",
    "Judged",
    "Raw",
    "RunView",
    "Setup",
    "Window",
]


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
        history: Callable[[], History] | None = None,
        streams: StreamReader | None = None,
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
        self.history = history
        self.streams = streams
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


@dataclass(frozen=True)
class JudgeContext:
    """What a judge may consult beside its evidence: the alerting contract (None: judge by the
    objectives the evidence recorded) and the run's time compression."""

    contract: Contract | None = None
    time_compression: float = 1.0

    def compress(self, seconds: float) -> float:
        return seconds / self.time_compression


@dataclass(frozen=True)
class Judged:
    """A judge's verdict: status, the reason in one line, and the evidence with what it
    derived filled in."""

    status: Status
    summary: str
    evidence: CheckEvidence


@dataclass(frozen=True)
class Raw:
    """A query (or what a check consulted) and its raw result, for a failing check's report."""

    label: str
    query: str | None
    value: Any


@dataclass
class CoverageFacts:
    """What one check result proves for the coverage matrix's inverse lists."""

    alerts_fired: set[str] = field(default_factory=set)
    alerts_proven: set[str] = field(default_factory=set)
    alerts_forbidden: set[str] = field(default_factory=set)
    queries_read: list[str] = field(default_factory=list)
    queries_moved: list[str] = field(default_factory=list)  # moved, or stayed flat as stated
    panels_shown: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Setup:
    """What building a scenario's checks may use: the target and its adapters."""

    target: Target
    prometheus: PrometheusAPI
    poller: AlertPoller


Column = Literal["metrics", "alerts", "dashboards"]
FigureGroup = Literal["metrics", "alerts", "panels"]


class Check(ABC):
    """Observes the run; `observe` runs concurrently from baseline to the end of recovery.

    Subclasses are the check kinds: `kind` names it in the evidence, `evidence_model` types its
    evidence, `build` makes its checks for a scenario.
    """

    kind: ClassVar[str] = "check"
    evidence_model: ClassVar[type[CheckEvidence]] = CheckEvidence
    column: ClassVar[Column | None] = None
    """The coverage matrix column this kind's checks fill (None: only the tests column)."""
    figure_group: ClassVar[FigureGroup | None] = None
    """Which figures of a scenario's report section `figure` adds to."""
    expects: ClassVar[tuple[str, Any, Any] | None] = None
    """The key of a scenario's `expect:` this kind reads: (key, type, pydantic Field with its
    default); the scenario model's `Expectations` is made of these (None: reads no key)."""

    def __init__(self, name: str):
        self.name = name
        self.started_at = time.time()

    # -- the kind, as the registry sees it -------------------------------------------------

    @classmethod
    @abstractmethod
    def build(cls, scenario: Scenario, setup: Setup) -> list[Check]:
        """This kind's checks for a scenario (none when it asks for none)."""

    @classmethod
    @abstractmethod
    def judge(cls, evidence: Any, ctx: JudgeContext) -> Judged:
        """The pure verdict on the evidence `collect` returned (or a stored run kept)."""

    @classmethod
    def raw(cls, evidence: Any) -> list[Raw]:
        """The raw queries and results the report shows for a failing or erroring check."""
        return [Raw("evidence", None, evidence.model_dump(mode="json"))]

    @classmethod
    def figure(cls, check: CheckResult, result: ScenarioResult) -> Any | None:
        """The report's figure for one result of this kind (in `figure_group`), if any."""
        return None

    @classmethod
    def facts(cls, check: CheckResult) -> CoverageFacts:
        """What this result proves for the coverage lists."""
        return CoverageFacts()

    @classmethod
    def attach(cls, evidence: Any, result: ScenarioResult) -> Any:
        """The evidence with what the scenario's record keeps for it once (e.g. the ledger),
        before it is judged offline."""
        return evidence

    @classmethod
    def upgrade(cls, older: dict[str, Any]) -> dict[str, Any]:
        """This kind's evidence of an older schema (v2) as the current model's JSON form."""
        return older

    # -- one check, during a run --------------------------------------------------------------

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
    async def collect(self, run: RunView) -> CheckEvidence:
        """The evidence model filled with everything the judge needs, read from the wire after
        recovery (may raise an AdapterError: the verdict is then `error`, naming what could
        not be consulted)."""

    async def verdict(self, run: RunView) -> CheckResult:
        try:
            observed = await self.collect(run)
        except AdapterError as exc:
            outcome = self.error(f"could not consult the target: {exc}")
        except HarnessError as exc:
            outcome = self.error(str(exc))
        else:
            ctx = JudgeContext(run.contract, run.target.profile.time_compression)
            outcome = self.result(self.judge(observed, ctx))
        return outcome.model_copy(update={"started_at": self.started_at, "ended_at": time.time()})

    def result(self, judged: Judged) -> CheckResult:
        return CheckResult(
            name=self.name,
            kind=self.kind,  # type: ignore[arg-type]
            status=judged.status,
            summary=judged.summary,
            evidence=judged.evidence,
        )

    def error(self, summary: str) -> CheckResult:
        return CheckResult(
            name=self.name,
            kind=self.kind,  # type: ignore[arg-type]
            status="error",
            summary=summary,
            evidence=self.evidence_model(),
        )
