"""Which span of the run a metric check queries: a counter's single step right at the window's
start needs the sample before it, so both windows reach two scrapes back (fault: before the
fault; recovery: before the heal)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio

from harness.checks.base import Window
from harness.checks.metrics import MetricCheck, MetricExpectation
from harness.evidence.record import Phase, PhaseSpan
from harness.testing import FakePrometheus


class Instants(FakePrometheus):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, float | None]] = []

    async def instant(self, query: str, at: float | None = None) -> list[Any]:
        self.asked.append((query, at))
        return []


def collect(window: str) -> list[tuple[str, float | None]]:
    prometheus = Instants()
    spec = MetricExpectation(query="sum(increase(c_total[$window]))", moved="up", window=window)
    check = MetricCheck(spec, prometheus, step=1.0)  # type: ignore[arg-type]
    recover = PhaseSpan(phase=Phase.RECOVER, start=130.0, end=136.0)
    run = SimpleNamespace(
        baseline=lambda: Window(80.0, 100.0),
        fault_window=lambda: Window(100.0, 130.0),
        span=lambda phase: recover if phase == Phase.RECOVER else None,
        target=SimpleNamespace(profile=SimpleNamespace(scrape_interval=1.0, min_range=1.0)),
    )
    anyio.run(check.collect, run)
    return prometheus.asked


def test_the_fault_window_reaches_two_scrapes_before_the_fault() -> None:
    baseline, fault = collect("fault")[:2]
    assert baseline == ("sum(increase(c_total[20s]))", 100.0)
    assert fault == ("sum(increase(c_total[32s]))", 130.0)


def test_the_recovery_window_reaches_two_scrapes_before_the_heal() -> None:
    _, recovery = collect("recovery")[:2]
    assert recovery == ("sum(increase(c_total[8s]))", 136.0)
