"""Metric checks: a PromQL expression must move during the fault relative to the run's own
baseline (or cross an absolute bound), and optionally come back after heal.

`$window` in a query is replaced by the window's length, and the query is evaluated at the
window's end: `sum(increase(x[$window]))` is then exactly "how much x grew in that window".
A query without `$window` is sampled over the window (max, or min for `down`/`below`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import anyio

from harness.checks.base import Check, CheckResult, RunView
from harness.durations import format_duration
from harness.prometheus import PrometheusAPI, PrometheusError, Series
from harness.scenario import MetricExpectation

WINDOW = "$window"


def _matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


class MetricCheck(Check):
    kind = "metric"

    def __init__(self, expectation: MetricExpectation, prometheus: PrometheusAPI, step: float):
        super().__init__(f"metric {expectation.query}")
        self.spec = expectation
        self.prometheus = prometheus
        self.step = step
        self.queries: list[dict[str, Any]] = []
        self.recovery: dict[str, Any] | None = None
        self._recovery_done = anyio.Event()

    def _uses_low(self) -> bool:
        return self.spec.moved == "down" or (
            self.spec.below is not None and self.spec.above is None
        )

    async def _value(self, start: float, end: float) -> tuple[float | None, dict[str, Any]]:
        """The expectation's value over [start, end], with the exact query and raw result."""
        length = max(1.0, end - start)
        if WINDOW in self.spec.query:
            query = self.spec.query.replace(WINDOW, format_duration(math.ceil(length)))
            samples = await self.prometheus.instant(query, at=end)
            kept = [s for s in samples if _matches(s.labels, self.spec.labels)]
            raw = [
                {"labels": s.labels, "value": s.value, "timestamp": s.timestamp} for s in samples
            ]
            value = sum(s.value for s in kept) if kept else None
            record = {"query": query, "evaluated_at": end, "result": raw, "matched": len(kept)}
        else:
            query = self.spec.query
            series = await self.prometheus.range(query, start, end, self.step)
            kept_series = [s for s in series if _matches(s.labels, self.spec.labels)]
            value = _pick(kept_series, low=self._uses_low())
            record = {
                "query": query,
                "range": [start, end, self.step],
                "result": [{"labels": s.labels, "points": s.points} for s in series],
                "matched": len(kept_series),
            }
        record["value"] = value
        self.queries.append(record)
        return value, record

    async def observe(self, run: RunView) -> None:
        """Recovery polling: once heal ends, watch for the value to return near baseline."""
        if self.spec.recover_within is None:
            return
        try:
            await self._watch_recovery(run)
        finally:
            self._recovery_done.set()

    async def _watch_recovery(self, run: RunView) -> None:
        heal = await run.wait_ended("heal")
        baseline = run.window("baseline")
        if baseline is None or baseline.end is None or heal.end is None:
            return
        length = baseline.end - baseline.start
        healed_at = heal.end
        deadline = healed_at + self.spec.recover_within
        base_value, _ = await self._safe_value(baseline.start, baseline.end)
        points = []
        while time.time() < deadline:
            now = time.time()
            value, _ = await self._safe_value(now - length, now)
            points.append((now, value))
            if base_value is not None and value is not None and _near(value, base_value, self.spec):
                self.recovery = {
                    "recovered_at": now,
                    "seconds_after_heal": now - healed_at,
                    "baseline": base_value,
                    "points": points,
                }
                return
            await anyio.sleep(max(1.0, self.step))
        self.recovery = {"recovered_at": None, "baseline": base_value, "points": points}

    async def settle(self, run: RunView) -> None:
        if self.spec.recover_within is None:
            return
        await self._recovery_done.wait()

    async def _safe_value(self, start: float, end: float) -> tuple[float | None, dict[str, Any]]:
        try:
            return await self._value(start, end)
        except PrometheusError as exc:
            return None, {"error": str(exc)}

    async def verdict(self, run: RunView) -> CheckResult:
        baseline = run.window("baseline")
        fault_start = run.window("inject")
        heal = run.window("heal")
        recover = run.window("recover")
        if baseline is None or baseline.end is None or fault_start is None or heal is None:
            return self.error(
                "run ended before the fault window was observed", queries=self.queries
            )
        window = (
            (fault_start.start, heal.end or heal.start)
            if self.spec.window == "fault"
            else (heal.end or heal.start, (recover.end if recover and recover.end else time.time()))
        )
        try:
            base, _ = await self._value(baseline.start, baseline.end)
            value, _ = await self._value(*window)
        except PrometheusError as exc:
            return self.error(f"Prometheus did not answer: {exc}", queries=self.queries)
        evidence: dict[str, Any] = {
            "baseline_window": [baseline.start, baseline.end],
            f"{self.spec.window}_window": list(window),
            "baseline": base,
            "value": value,
            "labels_required": self.spec.labels,
            "queries": self.queries,
        }
        if value is None:
            wanted = f" with labels {self.spec.labels}" if self.spec.labels else ""
            return self.error(f"no data{wanted} in the {self.spec.window} window", **evidence)
        failures = self._conditions(base, value)
        if isinstance(failures, str):
            return self.error(failures, **evidence)
        if self.spec.recover_within is not None:
            evidence["recovery"] = self.recovery
            if self.recovery is None or self.recovery.get("recovered_at") is None:
                failures.append(
                    f"not back within {self.spec.recover_tolerance:.0%} of baseline "
                    f"{self.spec.recover_within:g}s after heal"
                )
        shown = f"{value:g} vs baseline {base:g}" if base is not None else f"{value:g}"
        if failures:
            return CheckResult(
                self.name, self.kind, "fail", "; ".join(failures) + f" ({shown})", evidence
            )
        return CheckResult(self.name, self.kind, "pass", shown, evidence)

    def _conditions(self, base: float | None, value: float) -> list[str] | str:
        """Failed conditions, or a string when the baseline needed is missing (an error)."""
        spec = self.spec
        relative = spec.moved or spec.ratio_at_least is not None or spec.delta_above is not None
        if relative and base is None:
            return "no data in the baseline window to compare with"
        failures = []
        if spec.moved == "up" and not value > base:
            failures.append("did not move up")
        if spec.moved == "down" and not value < base:
            failures.append("did not move down")
        if spec.ratio_at_least is not None and not (
            value > 0 and (base == 0 or value / base >= spec.ratio_at_least)
        ):
            failures.append(f"ratio below {spec.ratio_at_least:g}")
        if spec.delta_above is not None and not value - base > spec.delta_above:
            failures.append(f"delta not above {spec.delta_above:g}")
        if spec.above is not None and not value > spec.above:
            failures.append(f"not above {spec.above:g}")
        if spec.below is not None and not value < spec.below:
            failures.append(f"not below {spec.below:g}")
        return failures


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


def _near(value: float, base: float, spec: MetricExpectation) -> bool:
    return abs(value - base) <= spec.recover_tolerance * max(abs(base), 1e-9)
