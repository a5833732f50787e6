"""Metric checks: a PromQL expression must move during the fault *against the run's own
baseline under the same workload* (or stay flat), and optionally come back after heal.

`$window` in a query is replaced by the window's length and the query is evaluated at the
window's end, so `sum(increase(x[$window]))` is exactly "how much x grew in that window". A
query without `$window` is sampled over the window (max, or min for `down`/`below`). Absolute
bounds (`above`, `below`) only ever narrow a relative condition: a metric the workload moves in
the baseline as much as in the fault proves nothing about the fault.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from harness.checks.base import (
    Check,
    CheckResult,
    CoverageFacts,
    JudgeContext,
    Judged,
    Raw,
    RunView,
    Setup,
    Window,
)
from harness.config import Profile, Strict
from harness.durations import Duration, format_duration
from harness.errors import PrometheusError
from harness.evidence.record import CheckEvidence, Phase, ScenarioResult, Status

if TYPE_CHECKING:
    from harness.prometheus import PrometheusAPI, Series
    from harness.scenario import Scenario

WINDOW = "$window"
MEANINGLESS_LABEL_VALUES = frozenset({"", "unknown", "redacted", "other"})
"""Label values that name nothing: an expectation on them proves no mapping works."""


class MetricExpectation(Strict):
    """A PromQL expression and how it must behave in the fault (or recovery) window compared
    with the baseline window of the same run."""

    query: str = Field(min_length=1)
    window: Literal["fault", "recovery"] = "fault"
    moved: Literal["up", "down", "flat"] | None = None
    ratio_at_least: Annotated[float, Field(gt=0)] | None = None
    delta_above: float | None = None
    above: float | None = None
    below: float | None = None
    tolerance: Annotated[float, Field(ge=0)] = Field(
        0.1, description="`moved: flat`: allowed change, as a share of the baseline"
    )
    tolerance_abs: Annotated[float, Field(ge=0)] = Field(
        0.0, description="`moved: flat`: allowed change in absolute terms (for a zero baseline)"
    )
    labels: dict[str, str] = Field(default_factory=dict)
    recover_within: Duration | None = Field(None, gt=0)
    recover_tolerance: Annotated[float, Field(ge=0)] = 0.1

    @model_validator(mode="after")
    def _relative(self) -> MetricExpectation:
        relative = (self.moved, self.ratio_at_least, self.delta_above, self.recover_within)
        if all(c is None for c in relative):
            raise ValueError(
                "needs a condition relative to the baseline: moved, ratio_at_least, "
                "delta_above or recover_within (above/below only narrow one: a metric the "
                "workload also moves in the baseline proves nothing about the fault)"
            )
        if self.ratio_at_least is not None and self.above is None:
            raise ValueError(
                "ratio_at_least needs an absolute floor (above:): any ratio holds against a "
                "zero baseline"
            )
        return self

    @property
    def uses_low(self) -> bool:
        return self.moved == "down" or (
            self.moved is None and self.below is not None and self.above is None
        )


class Record(BaseModel):
    """A raw observation as the evidence keeps it."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


Value = Annotated[float, BeforeValidator(lambda v: math.nan if v is None else v)]
"""A sample's value: Prometheus answers NaN (a ratio over an idle denominator), which the
evidence's JSON writes as null; read back, null is NaN again."""


class SampleRecord(Record):
    labels: dict[str, str] = Field(default_factory=dict)
    value: Value
    timestamp: float


class SeriesRecord(Record):
    labels: dict[str, str] = Field(default_factory=dict)
    points: list[tuple[float, Value]] = Field(default_factory=list)


class QueryRecord(Record):
    """One query the check ran: instant (`evaluated_at`) or range (`range`: start, end, step),
    every series it returned, how many matched the expected labels, and the value taken."""

    query: str
    evaluated_at: float | None = None
    range: tuple[float, float, float] | None = None
    result: list[SampleRecord | SeriesRecord] = Field(default_factory=list)
    matched: int = 0
    value: float | None = None


class SeriesOverRun(Record):
    """The query over the whole scenario, for plots (an `error` when it could not be read)."""

    query: str
    step: float | None = None
    range: tuple[float, float] | None = None
    rolling_window: str | None = None
    truncated: int = 0
    series: list[SeriesRecord] = Field(default_factory=list)
    error: str | None = None


class Recovery(Record):
    """The recovery poll after heal: every point (time, value; None when the query failed)
    up to the deadline, and what the judge found in them."""

    healed_at: float | None = None
    deadline: float | None = None
    baseline: float | None = None
    points: list[tuple[float, float | None]] = Field(default_factory=list)
    error: str | None = None
    recovered_at: float | None = None  # judged
    seconds_after_heal: float | None = None  # judged


class MetricEvidence(CheckEvidence):
    """What a metric check observed: the baseline and judged windows with their values, the
    series the query returned, the recovery poll, every query with its raw result, and the
    query over the whole scenario for the plot. (v2 evidence has the same fields but no series
    counts and no heal time or deadline in its recovery, which was decided while polling.)"""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    expected: MetricExpectation | None = None
    baseline_window: tuple[float, float] | None = None
    fault_window: tuple[float, float] | None = None
    recovery_window: tuple[float, float] | None = None
    baseline: float | None = None
    value: float | None = None
    series_returned: int | None = Field(None, description="series the judged query returned")
    matched: int | None = Field(None, description="of those, series with the expected labels")
    labels_seen: list[dict[str, str]] = Field(default_factory=list)
    recovery: Recovery | None = None
    queries: list[QueryRecord] = Field(default_factory=list)
    series: SeriesOverRun | None = None

    @property
    def window(self) -> tuple[float, float] | None:
        """The judged window (fault or recovery, as the expectation says)."""
        recovery = self.expected is not None and self.expected.window == "recovery"
        return self.recovery_window if recovery else self.fault_window


def _matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def conditions(spec: MetricExpectation, base: float | None, value: float) -> list[str] | str:
    """The failed conditions; a string when the baseline they need is missing (an error)."""
    if base is None:
        return "no data in the baseline window to compare with"
    failures = []
    if spec.moved == "up" and not value > base:
        failures.append("did not move up")
    if spec.moved == "down" and not value < base:
        failures.append("did not move down")
    if spec.moved == "flat":
        allowed = max(spec.tolerance * abs(base), spec.tolerance_abs)
        if abs(value - base) > allowed:
            failures.append(f"did not stay flat (allowed ±{allowed:g})")
    if spec.ratio_at_least is not None:
        if base > 0 and value / base < spec.ratio_at_least:
            failures.append(f"ratio {value / base:.3g} below {spec.ratio_at_least:g}")
        elif base <= 0 and spec.above is None:
            return "a ratio against a zero baseline needs an absolute floor (above:)"
    if spec.delta_above is not None and not value - base > spec.delta_above:
        failures.append(f"delta {value - base:.3g} not above {spec.delta_above:g}")
    if spec.above is not None and not value > spec.above:
        failures.append(f"not above {spec.above:g}")
    if spec.below is not None and not value < spec.below:
        failures.append(f"not below {spec.below:g}")
    return failures


def first_recovered(
    spec: MetricExpectation, recovery: Recovery, deadline: float | None = None
) -> float | None:
    """The first polled point back at the recovery baseline, before the deadline."""
    base = recovery.baseline
    until = recovery.deadline if deadline is None else deadline
    if base is None:
        return None
    for at, value in recovery.points:
        if until is not None and at >= until:
            break
        if value is not None and recovered(value, base, spec.recover_tolerance, spec.moved):
            return at
    return None


def judge_recovery(spec: MetricExpectation, recovery: Recovery, ctx: JudgeContext) -> Recovery:
    """The recovery poll judged against the expectation's `recover_within` on the run's clock."""
    deadline = recovery.deadline
    if recovery.healed_at is not None and spec.recover_within is not None:
        deadline = recovery.healed_at + ctx.compress(spec.recover_within)
    at = first_recovered(spec, recovery, deadline)
    return recovery.model_copy(
        update={
            "recovered_at": at,
            "seconds_after_heal": (
                at - recovery.healed_at if at is not None and recovery.healed_at else None
            ),
        }
    )


def judge_metric(
    evidence: MetricEvidence, ctx: JudgeContext | None = None
) -> tuple[Status, str, MetricEvidence]:
    """Pass only when the judged window moved as expected against this run's baseline (and,
    when asked, the value came back after heal in time)."""
    spec = evidence.expected
    if spec is None:
        return "error", "the evidence keeps no expectation", evidence
    ctx = ctx or JudgeContext()
    if evidence.recovery is not None and evidence.recovery.healed_at is not None:
        evidence = evidence.model_copy(
            update={"recovery": judge_recovery(spec, evidence.recovery, ctx)}
        )
    if evidence.window is None or evidence.baseline_window is None:
        return "error", "run ended before the fault window was observed", evidence
    if not evidence.series_returned:
        return (
            "error",
            f"no data in the {spec.window} window (the query returned nothing)",
            evidence,
        )
    if spec.labels and not evidence.matched:
        seen = ", ".join(str({k: s.get(k) for k in spec.labels}) for s in evidence.labels_seen[:5])
        return "fail", f"no series with labels {spec.labels} (series seen: {seen})", evidence
    if evidence.value is None:
        return "error", f"no sample in the {spec.window} window", evidence
    failures = conditions(spec, evidence.baseline, evidence.value)
    if isinstance(failures, str):
        return "error", failures, evidence
    if spec.recover_within is not None:
        recovery = evidence.recovery
        if recovery is None or recovery.recovered_at is None:
            failures.append(
                f"not back to within {spec.recover_tolerance:.0%} of the baseline "
                f"{format_duration(spec.recover_within)} (production) after heal"
            )
    shown = f"{evidence.value:g} vs baseline {evidence.baseline:g}"
    if failures:
        return "fail", "; ".join(failures) + f" ({shown})", evidence
    return "pass", shown, evidence


def _pick(series: list[Series], *, low: bool) -> float | None:
    """Sum across matching series per timestamp, then the max (or min) over time."""
    per_time: dict[float, float] = {}
    for s in series:
        for t, v in s.points:
            if not math.isnan(v):
                per_time[t] = per_time.get(t, 0.0) + v
    if not per_time:
        return None
    return min(per_time.values()) if low else max(per_time.values())


def _slack(base: float, tolerance: float) -> float:
    return tolerance * max(abs(base), 1e-9)


def _near(value: float, base: float, tolerance: float) -> bool:
    return abs(value - base) <= _slack(base, tolerance)


def recovered(value: float, base: float, tolerance: float, moved: str | None) -> bool:
    """Back to the baseline level after heal. A symptom that moved up is over once the value
    is at most the baseline's (an in-flight gauge at 0 after a baseline of 2 is recovered); one
    that moved down, once it is at least the baseline's; otherwise within the tolerance."""
    if moved == "up":
        return value <= base + _slack(base, tolerance)
    if moved == "down":
        return value >= base - _slack(base, tolerance)
    return _near(value, base, tolerance)


RELATIVE = ("ratio_at_least", "delta_above")


class MetricCheck(Check):
    kind = "metric"
    evidence_model = MetricEvidence
    column = "metrics"
    figure_group = "metrics"
    expects = ("metrics", list[MetricExpectation], Field(default_factory=list))

    def __init__(self, spec: MetricExpectation, prometheus: PrometheusAPI, step: float):
        super().__init__(f"metric {spec.query}")
        self.spec = spec
        self.prometheus = prometheus
        self.step = step
        self.queries: list[QueryRecord] = []
        self.recovery: Recovery | None = None
        self._recovery_done = anyio.Event()

    @classmethod
    def build(cls, scenario: Scenario, setup: Setup) -> list[Check]:
        step = setup.target.profile.scrape_interval
        return [cls(m, setup.prometheus, step) for m in scenario.expect.metrics]

    async def _value(self, window: Window) -> tuple[float | None, int, int, list[dict]]:
        """(value, series returned, series matching the labels, their label sets)."""
        length = max(1.0, window.length)
        if WINDOW in self.spec.query:
            query = self.spec.query.replace(WINDOW, format_duration(math.ceil(length)))
            samples = await self.prometheus.instant(query, at=window.end)
            kept = [s for s in samples if _matches(s.labels, self.spec.labels)]
            values = [s.value for s in kept if not math.isnan(s.value)]
            value = sum(values) if values else None
            self.queries.append(
                QueryRecord(
                    query=query,
                    evaluated_at=window.end,
                    result=[
                        SampleRecord(labels=s.labels, value=s.value, timestamp=s.timestamp)
                        for s in samples
                    ],
                    matched=len(kept),
                    value=value,
                )
            )
            return value, len(samples), len(kept), [s.labels for s in samples]
        series = await self.prometheus.range(self.spec.query, window.start, window.end, self.step)
        for s in series:  # the API rounds the range outwards: keep the window's own points
            s.points = [(t, v) for t, v in s.points if window.start <= t <= window.end]
        kept_series = [s for s in series if _matches(s.labels, self.spec.labels)]
        value = _pick(kept_series, low=self.spec.uses_low)
        self.queries.append(
            QueryRecord(
                query=self.spec.query,
                range=(window.start, window.end, self.step),
                result=[SeriesRecord(labels=s.labels, points=s.points) for s in series],
                matched=len(kept_series),
                value=value,
            )
        )
        return value, len(series), len(kept_series), [s.labels for s in series]

    async def observe(self, run: RunView) -> None:
        """Recovery polling: once heal ends, poll the value until the judge's own test says it
        is back near the baseline, or the deadline passes; every point is kept."""
        if self.spec.recover_within is None:
            return
        try:
            await self._watch_recovery(run)
        finally:
            self._recovery_done.set()

    async def _watch_recovery(self, run: RunView) -> None:
        await run.wait_ended(Phase.HEAL)
        baseline, healed = run.baseline(), run.healed_at()
        if baseline is None or healed is None or self.spec.recover_within is None:
            return
        deadline = healed + run.target.profile.compress(self.spec.recover_within)
        recovery = self.recovery = Recovery(healed_at=healed, deadline=deadline)
        # A windowed query is compared over a window as long as the baseline's; a sampled one
        # (a gauge) by its latest samples, not the min/max over a window reaching back into
        # the fault.
        trailing = baseline.length if WINDOW in self.spec.query else max(self.step, 1.0)
        try:
            recovery.baseline, *_ = await self._value(baseline)
        except PrometheusError as exc:
            recovery.error = str(exc)
            return
        while time.time() < deadline:
            now = time.time()
            try:
                value, *_ = await self._value(Window(now - trailing, now))
            except PrometheusError as exc:
                recovery.points.append((now, None))
                recovery.error = str(exc)
                await anyio.sleep(max(1.0, self.step))
                continue
            recovery.points.append((now, value))
            if first_recovered(self.spec, recovery) is not None:
                return
            await anyio.sleep(max(1.0, self.step))

    async def settle(self, run: RunView) -> None:
        if self.spec.recover_within is not None:
            await self._recovery_done.wait()

    async def collect(self, run: RunView) -> MetricEvidence:
        baseline, fault = run.baseline(), run.fault_window()
        if baseline is None or fault is None:
            return MetricEvidence(
                expected=self.spec, series_returned=0, matched=0, queries=self.queries
            )
        if self.spec.window == "fault":
            # Two scrapes of lookback before the fault (still the baseline's workload): a
            # counter's single step right at the fault's start needs the sample before it, or
            # rate()/increase() over the window sees no growth at all.
            window = Window(max(baseline.start, fault.start - 2 * self.step), fault.end)
        else:
            # The same lookback at the heal: a counter stepping at the first scrape after it
            # (backpressure's recovery in PERF-004) needs the sample before the step.
            recover = run.span(Phase.RECOVER)
            end = recover.end if recover and recover.end else time.time()
            window = Window(fault.end - 2 * self.step, max(end, fault.end + 1.0))
        base, _, _, _ = await self._value(baseline)
        value, series, matched, labels = await self._value(window)
        plot = await series_over_run(
            self.prometheus, self.spec.query, baseline.start, time.time(), run.target.profile
        )
        return MetricEvidence(
            expected=self.spec,
            baseline_window=(baseline.start, baseline.end),
            **{f"{self.spec.window}_window": (window.start, window.end)},
            baseline=base,
            value=value,
            series_returned=series,
            matched=matched,
            labels_seen=labels,
            recovery=self.recovery,
            queries=self.queries,
            series=plot,
        )

    @classmethod
    def judge(cls, evidence: MetricEvidence, ctx: JudgeContext) -> Judged:
        status, summary, evidence = judge_metric(evidence, ctx)
        return Judged(status, summary, evidence)

    @classmethod
    def raw(cls, evidence: MetricEvidence) -> list[Raw]:
        blocks = [
            Raw(
                f"instant at {q.evaluated_at:.3f}" if q.evaluated_at is not None else "range",
                q.query,
                [r.model_dump(mode="json") for r in q.result],
            )
            for q in evidence.queries
        ]
        if evidence.series is not None and evidence.series.error:
            blocks.append(
                Raw(
                    "range series over the scenario",
                    evidence.series.query,
                    evidence.series.model_dump(mode="json"),
                )
            )
        return blocks or super().raw(evidence)

    @classmethod
    def figure(cls, check: CheckResult, result: ScenarioResult) -> Any:
        from harness.report.figures import metric_figure

        return metric_figure(check, result)

    @classmethod
    def facts(cls, check: CheckResult) -> CoverageFacts:
        spec = check.evidence.expected  # type: ignore[attr-defined]
        if spec is None:
            return CoverageFacts()
        # a metric shown flat where the scenario says it must stay flat shows it works too
        relative = spec.moved in ("up", "down", "flat") or any(
            getattr(spec, k) is not None for k in RELATIVE
        )
        moved = [spec.query] if check.status == "pass" and relative else []
        return CoverageFacts(queries_read=[spec.query], queries_moved=moved)


MAX_SERIES = 20
MAX_POINTS = 2000


async def series_over_run(
    prometheus: PrometheusAPI, query: str, start: float, end: float, profile: Profile
) -> SeriesOverRun:
    """The query over the whole scenario (baseline start → now), for plots: `$window` becomes a
    rolling window of four scrapes; at most MAX_SERIES series, the step widened so no series
    has more than MAX_POINTS points. A failure is recorded, never raised: plots are evidence
    beside the verdict, not part of it."""
    rolling = max(4 * profile.scrape_interval, profile.min_range)
    expr = query.replace(WINDOW, format_duration(rolling))
    step = max(profile.scrape_interval, (end - start) / MAX_POINTS, 0.5)
    try:
        series = await prometheus.range(expr, start, end, step)
    except PrometheusError as exc:
        return SeriesOverRun(query=expr, error=str(exc))
    return SeriesOverRun(
        query=expr,
        step=step,
        range=(start, end),
        rolling_window=format_duration(rolling) if WINDOW in query else None,
        truncated=max(0, len(series) - MAX_SERIES),
        series=[SeriesRecord(labels=s.labels, points=s.points) for s in series[:MAX_SERIES]],
    )
