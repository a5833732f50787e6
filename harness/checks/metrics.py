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
from dataclasses import dataclass, field
from typing import Any

import anyio

from harness.checks.base import Check, CheckResult, RunView, Window, result
from harness.config import Profile
from harness.durations import format_duration
from harness.errors import PrometheusError
from harness.evidence.record import Phase, Status
from harness.prometheus import PrometheusAPI, Series
from harness.specs.expectations import MetricExpectation

WINDOW = "$window"
MEANINGLESS_LABEL_VALUES = frozenset({"", "unknown", "redacted", "other"})
"""Label values that name nothing: an expectation on them proves no mapping works."""


@dataclass
class MetricObservation:
    """What Prometheus returned for the baseline and the judged window."""

    base: float | None
    value: float | None
    series: int
    matched: int
    labels_seen: list[dict[str, str]] = field(default_factory=list)
    baseline_window: Window | None = None
    window: Window | None = None
    recovery: dict[str, Any] | None = None
    queries: list[dict[str, Any]] = field(default_factory=list)
    series_over_run: dict[str, Any] | None = None


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


def judge_metric(spec: MetricExpectation, obs: MetricObservation) -> tuple[Status, str]:
    """Pass only when the judged window moved as expected against this run's baseline."""
    if obs.window is None or obs.baseline_window is None:
        return "error", "run ended before the fault window was observed"
    if obs.series == 0:
        return "error", f"no data in the {spec.window} window (the query returned nothing)"
    if spec.labels and obs.matched == 0:
        seen = ", ".join(str({k: s.get(k) for k in spec.labels}) for s in obs.labels_seen[:5])
        return "fail", f"no series with labels {spec.labels} (series seen: {seen})"
    if obs.value is None:
        return "error", f"no sample in the {spec.window} window"
    failures = conditions(spec, obs.base, obs.value)
    if isinstance(failures, str):
        return "error", failures
    if spec.recover_within is not None:
        recovery = obs.recovery or {}
        if recovery.get("recovered_at") is None:
            failures.append(
                f"not back to within {spec.recover_tolerance:.0%} of the baseline "
                f"{format_duration(spec.recover_within)} (production) after heal"
            )
    shown = f"{obs.value:g} vs baseline {obs.base:g}"
    if failures:
        return "fail", "; ".join(failures) + f" ({shown})"
    return "pass", shown


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


class MetricCheck(Check):
    kind = "metric"

    def __init__(self, spec: MetricExpectation, prometheus: PrometheusAPI, step: float):
        super().__init__(f"metric {spec.query}")
        self.spec = spec
        self.prometheus = prometheus
        self.step = step
        self.queries: list[dict[str, Any]] = []
        self.recovery: dict[str, Any] | None = None
        self._recovery_done = anyio.Event()

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
                {
                    "query": query,
                    "evaluated_at": window.end,
                    "result": [
                        {"labels": s.labels, "value": s.value, "timestamp": s.timestamp}
                        for s in samples
                    ],
                    "matched": len(kept),
                    "value": value,
                }
            )
            return value, len(samples), len(kept), [s.labels for s in samples]
        series = await self.prometheus.range(self.spec.query, window.start, window.end, self.step)
        for s in series:  # the API rounds the range outwards: keep the window's own points
            s.points = [(t, v) for t, v in s.points if window.start <= t <= window.end]
        kept_series = [s for s in series if _matches(s.labels, self.spec.labels)]
        value = _pick(kept_series, low=self.spec.uses_low)
        self.queries.append(
            {
                "query": self.spec.query,
                "range": [window.start, window.end, self.step],
                "result": [{"labels": s.labels, "points": s.points} for s in series],
                "matched": len(kept_series),
                "value": value,
            }
        )
        return value, len(series), len(kept_series), [s.labels for s in series]

    async def observe(self, run: RunView) -> None:
        """Recovery polling: once heal ends, watch for the value to return near baseline."""
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
        # A windowed query is compared over a window as long as the baseline's; a sampled one
        # (a gauge) by its latest samples, not the min/max over a window reaching back into
        # the fault.
        trailing = baseline.length if WINDOW in self.spec.query else max(self.step, 1.0)
        try:
            base, *_ = await self._value(baseline)
        except PrometheusError as exc:
            self.recovery = {"recovered_at": None, "error": str(exc)}
            return
        points: list[tuple[float, float | None]] = []
        while time.time() < deadline:
            now = time.time()
            try:
                value, *_ = await self._value(Window(now - trailing, now))
            except PrometheusError as exc:
                points.append((now, None))
                self.recovery = {"recovered_at": None, "error": str(exc), "points": points}
                await anyio.sleep(max(1.0, self.step))
                continue
            points.append((now, value))
            if (
                base is not None
                and value is not None
                and recovered(value, base, self.spec.recover_tolerance, self.spec.moved)
            ):
                self.recovery = {
                    "recovered_at": now,
                    "seconds_after_heal": now - healed,
                    "baseline": base,
                    "points": points,
                }
                return
            await anyio.sleep(max(1.0, self.step))
        self.recovery = {"recovered_at": None, "baseline": base, "points": points}

    async def settle(self, run: RunView) -> None:
        if self.spec.recover_within is not None:
            await self._recovery_done.wait()

    async def collect(self, run: RunView) -> MetricObservation:
        baseline, fault = run.baseline(), run.fault_window()
        if baseline is None or fault is None:
            return MetricObservation(None, None, 0, 0, queries=self.queries)
        if self.spec.window == "fault":
            # Two scrapes of lookback before the fault (still the baseline's workload): a
            # counter's single step right at the fault's start needs the sample before it, or
            # rate()/increase() over the window sees no growth at all.
            window = Window(max(baseline.start, fault.start - 2 * self.step), fault.end)
        else:
            recover = run.span(Phase.RECOVER)
            end = recover.end if recover and recover.end else time.time()
            window = Window(fault.end, max(end, fault.end + 1.0))
        base, _, _, _ = await self._value(baseline)
        value, series, matched, labels = await self._value(window)
        plot = await series_over_run(
            self.prometheus, self.spec.query, baseline.start, time.time(), run.target.profile
        )
        return MetricObservation(
            base=base,
            value=value,
            series=series,
            matched=matched,
            labels_seen=labels,
            baseline_window=baseline,
            window=window,
            recovery=self.recovery,
            queries=self.queries,
            series_over_run=plot,
        )

    def judge(self, observed: MetricObservation) -> CheckResult:
        status, summary = judge_metric(self.spec, observed)
        return result(
            self,
            status,
            summary,
            {
                "expected": self.spec.model_dump(mode="json", exclude_none=True),
                "baseline_window": _pair(observed.baseline_window),
                f"{self.spec.window}_window": _pair(observed.window),
                "baseline": observed.base,
                "value": observed.value,
                "recovery": observed.recovery,
                "queries": observed.queries,
                "series": observed.series_over_run,
            },
        )


def _pair(window: Window | None) -> list[float] | None:
    return [window.start, window.end] if window else None


MAX_SERIES = 20
MAX_POINTS = 2000


async def series_over_run(
    prometheus: PrometheusAPI, query: str, start: float, end: float, profile: Profile
) -> dict[str, Any]:
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
        return {"query": expr, "error": str(exc)}
    return {
        "query": expr,
        "step": step,
        "range": [start, end],
        "rolling_window": format_duration(rolling) if WINDOW in query else None,
        "truncated": max(0, len(series) - MAX_SERIES),
        "series": [{"labels": s.labels, "points": s.points} for s in series[:MAX_SERIES]],
    }
