"""The report as data: per run what ran where, per scenario its verdict and why, faults,
checks, failures with their raw queries, ledger, history, and the coverage matrix.

The HTML and Markdown writers only lay this out, so both say exactly the same thing, and
everything here is read from the evidence (nothing is recomputed or filled in).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from harness.checks.alert_poller import Sighting
from harness.checks.alerts import TIMINGS, AlertEvidence, NotificationRecord
from harness.checks.delivery import DeliveryEvidence
from harness.checks.registry import check_class
from harness.evidence.record import CheckResult, FaultRecord, ScenarioResult
from harness.report.coverage import DEFAULT_STALE_AFTER_S, Coverage, compute_coverage
from harness.report.figures import ScenarioFigures, origin, scenario_figures
from harness.report.inventory import Inventory, id_order
from harness.report.runs import LoadedRun, histories

MAX_RAW_CHARS = 6000
"""Per raw block; the rest stays in evidence.json (the report says so where it cuts)."""

LEDGER_ROWS: list[tuple[str, str, str | None]] = [
    # (LedgerSummary field, what it means, the DeliveryExpectation field that bounds it)
    ("published", "published", None),
    ("acked", "acked by JetStream", None),
    ("not_acked", "not acked (publish failed)", None),
    ("answered", "answered by the router", None),
    ("dead_lettered", "dead-lettered", None),
    ("lost", "lost (acked, never answered nor dead-lettered)", "lost"),
    ("messages_with_duplicates", "messages answered more than once", None),
    ("duplicate_outcomes", "duplicate outcomes", None),
    (
        "max_duplicates_per_message",
        "most extra answers for one message",
        "max_duplicates_per_message",
    ),
    ("unexpected", "unexpected answers", "unexpected"),
    ("unparsable", "unparsable answers", None),
    ("poison_published", "poison published", None),
    ("poison_dead_lettered", "poison dead-lettered", None),
    ("advisories", "JetStream advisories seen", None),
]


@dataclass
class RawBlock:
    """A query (or what a check consulted) and its raw result, as the evidence has it."""

    label: str
    query: str | None
    result: str
    truncated: bool = False


@dataclass
class Failure:
    check: CheckResult
    raw: list[RawBlock]


@dataclass
class FaultRow:
    fault: FaultRecord
    what: str
    read_back: str
    heal_evidence: str


@dataclass
class Receipts:
    """What Alertmanager held and which notifications reached the receiver, for one alert."""

    alert: str
    status: str
    alertmanager: list[Sighting]
    notifications: list[NotificationRecord]
    timings: dict[str, float]


@dataclass
class HistoryRow:
    run_id: str
    started_at: float
    verdict: str
    reason: str
    latest: bool


@dataclass
class ScenarioSection:
    scenario_id: str
    anchor: str
    result: ScenarioResult
    run: LoadedRun
    why: list[str]
    faults: list[FaultRow]
    failures: list[Failure]
    receipts: list[Receipts]
    ledger: list[tuple[str, Any, Any]] | None
    ledger_extra: dict[str, Any]
    history: list[HistoryRow]
    figures: ScenarioFigures
    origin: float
    svgs: dict[str, Any] = field(default_factory=dict)  # inline SVG (report.html)
    plots: dict[str, Any] = field(default_factory=dict)  # SVG file paths (report.md)

    def rel(self, at: float | None) -> str:
        """A time on the scenario's clock, as the plots show it."""
        return "–" if at is None else f"{at - self.origin:+.1f}s"


@dataclass
class RunSummary:
    run: LoadedRun
    verdicts: dict[str, int]
    target: dict[str, Any]


@dataclass
class Report:
    generated_at: float
    runs: list[RunSummary]
    sections: list[ScenarioSection]
    coverage: Coverage
    totals: dict[str, int]

    @property
    def data_loss(self) -> list[ScenarioSection]:
        """Scenarios whose stream lost acknowledged messages, the silent ones first."""
        lossy = [s for s in self.sections if s.result.data_loss and s.result.data_loss.lost]
        return sorted(lossy, key=lambda s: not s.result.data_loss.silent)  # type: ignore[union-attr]

    @property
    def silent_data_loss(self) -> list[ScenarioSection]:
        return [s for s in self.data_loss if s.result.data_loss.silent]  # type: ignore[union-attr]

    @property
    def title(self) -> str:
        if len(self.runs) == 1:
            return f"Chaos evidence: run {self.runs[0].run.run_id}"
        return f"Chaos evidence: {len(self.runs)} runs"


def anchor(scenario_id: str) -> str:
    return "scenario-" + re.sub(r"[^A-Za-z0-9_-]", "-", scenario_id)


def dump(value: Any, limit: int = MAX_RAW_CHARS) -> tuple[str, bool]:
    """Pretty JSON, cut at `limit` characters (and said so)."""
    text = json.dumps(value, indent=1, default=str, ensure_ascii=False)
    if len(text) <= limit:
        return text, False
    return text[:limit] + "\n… (cut here; the full result is in evidence.json)", True


def _block(label: str, query: str | None, value: Any) -> RawBlock:
    text, cut = dump(value)
    return RawBlock(label, query, text, cut)


def raw_blocks(check: CheckResult, result: ScenarioResult | None = None) -> list[RawBlock]:
    """The raw queries and results a failing or erroring check rests on, as its kind shows
    them (with what the scenario's record keeps for it, e.g. the ledger)."""
    kind = check_class(check.kind)
    evidence = kind.attach(check.evidence, result) if result is not None else check.evidence
    return [_block(r.label, r.query, r.value) for r in kind.raw(evidence)]


def _what(fault: FaultRecord) -> str:
    spec = fault.spec
    parts = [
        f"{k}={v}"
        for k, v in spec.items()
        if k not in ("kind", "start", "duration", "why", "scaled", "name")
        and v not in (None, [], {})
    ]
    return ", ".join(parts)


def fault_rows(result: ScenarioResult) -> list[FaultRow]:
    return [
        FaultRow(
            f,
            _what(f),
            dump(f.read_back, 2000)[0] if f.read_back is not None else "",
            dump(f.heal.evidence, 2000)[0] if f.heal and f.heal.evidence else "",
        )
        for f in result.faults
    ]


def why(result: ScenarioResult) -> list[str]:
    """The reasons for the verdict, most important first."""
    bad = [c for c in result.checks if c.status != "pass"]
    lines = [f"{c.name}: {c.status} — {c.summary}" for c in bad]
    unhealed = [f for f in result.faults if f.applied_at and not (f.heal and f.heal.healed)]
    lines += [f"fault {f.key} ({f.kind}) was not proven healed" for f in unhealed]
    lines += [f"fault {f.key} ({f.kind}): {f.error}" for f in result.faults if f.error]
    if result.reason and not bad:
        lines.insert(0, result.reason)
    if not lines and result.verdict == "passed":
        applied = [f for f in result.faults if f.applied_at]
        lines.append(
            f"all {len(result.checks)} checks passed on data observed in this run; "
            f"{len(applied)} fault(s) applied, read back and proven healed"
        )
    return lines


def receipts(result: ScenarioResult) -> list[Receipts]:
    """What Alertmanager held and which notifications arrived, per expected alert."""
    out = []
    for c in result.checks:
        if not isinstance(c.evidence, AlertEvidence):
            continue
        e = c.evidence
        out.append(
            Receipts(
                e.alert,
                c.status,
                list(e.alertmanager),
                list(e.notifications),
                {k: getattr(e, k) for k in TIMINGS if getattr(e, k) is not None},
            )
        )
    return out


def ledger(result: ScenarioResult) -> tuple[list[tuple[str, Any, Any]] | None, dict[str, Any]]:
    """(rows of observed vs allowed, the rest worth showing) from the scenario's workload
    record and the delivery check's bounds."""
    data = result.workload
    if data is None:
        return None, {}
    check = next((c for c in result.checks if isinstance(c.evidence, DeliveryEvidence)), None)
    expected = check.evidence.expected if check else None  # type: ignore[union-attr]
    rows = [
        (meaning, getattr(data, key), getattr(expected, bound) if bound and expected else None)
        for key, meaning, bound in LEDGER_ROWS
    ]
    extra: dict[str, Any] = {
        "rate": data.rate,
        "latency_s": (
            data.latency_s.model_dump(mode="json", exclude_none=True)
            if data.latency_s.count
            else None
        ),
        "publish_errors": data.publish_errors,
        "by_kind": data.by_kind,
    }
    extra = {k: v for k, v in extra.items() if v not in (None, {}, [])}
    if data.server.max_deliver is not None:
        extra["server max_deliver"] = data.server.max_deliver
    return rows, extra


def build_report(
    runs: list[LoadedRun],
    inventory: Inventory,
    *,
    now: float | None = None,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> Report:
    """The report of one or more runs: the latest result per scenario, with its history."""
    now = time.time() if now is None else now
    sections = []
    for history in sorted(histories(runs), key=lambda h: id_order(h.scenario_id)):
        result = history.latest
        rows, extra = ledger(result)
        sections.append(
            ScenarioSection(
                scenario_id=result.scenario_id,
                anchor=anchor(result.scenario_id),
                result=result,
                run=history.latest_run,
                why=why(result),
                faults=fault_rows(result),
                failures=[
                    Failure(c, raw_blocks(c, result)) for c in result.checks if c.status != "pass"
                ],
                receipts=receipts(result),
                ledger=rows,
                ledger_extra=extra,
                history=[
                    HistoryRow(r.run_id, r.started_at, r.verdict, r.reason, i == 0)
                    for i, (_, r) in enumerate(history.results)
                ],
                figures=scenario_figures(result),
                origin=origin(result),
            )
        )
    summaries = []
    for run in runs:
        counts: dict[str, int] = {}
        for s in run.record.scenarios:
            counts[s.verdict] = counts.get(s.verdict, 0) + 1
        target = {k: v for k, v in run.record.target.items() if k != "profile" and v}
        summaries.append(RunSummary(run, counts, target))
    totals: dict[str, int] = {}
    for s in sections:
        totals[s.result.verdict] = totals.get(s.result.verdict, 0) + 1
    return Report(
        generated_at=now,
        runs=summaries,
        sections=sections,
        coverage=compute_coverage(runs, inventory, now=now, stale_after_s=stale_after_s),
        totals=totals,
    )
