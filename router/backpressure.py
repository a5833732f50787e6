"""Backpressure: sliding-window latency percentiles and the 2-of-3 threshold status (§6.10)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import structlog

from router.config import Config
from router.metrics import Metrics

log = structlog.get_logger(component="router.backpressure")

INACTIVE, WARNING, ACTIVE = "inactive", "backpressure_warning", "backpressure_active"
_RANK = {INACTIVE: 0, WARNING: 1, ACTIVE: 2}
MAX_SAMPLES = 20_000


class LatencyWindow:
    """Processing latencies of the last `window` seconds (bounded sample count)."""

    def __init__(self, window: float, max_samples: int = MAX_SAMPLES) -> None:
        self.window = window
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)

    def add(self, seconds: float, now: float | None = None) -> None:
        self._samples.append((time.monotonic() if now is None else now, seconds))

    def percentiles(self, qs: tuple[float, ...], now: float | None = None) -> list[float]:
        """Nearest-rank percentiles in milliseconds; zeros when the window is empty."""
        now = time.monotonic() if now is None else now
        horizon = now - self.window
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()
        if not self._samples:
            return [0.0 for _ in qs]
        values = sorted(latency for _, latency in self._samples)
        last = len(values) - 1
        return [values[min(last, max(0, int(round(q * last))))] * 1000.0 for q in qs]


@dataclass
class Inputs:
    pending: int
    p95_ms: float
    inflight: int


class Backpressure:
    """Evaluated on the monitor tick; the decide gate only reads `active` (cheap per message)."""

    def __init__(self, config: Config, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.status = INACTIVE
        self.window = LatencyWindow(config.latency_window)

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def overloaded(self, inputs: Inputs) -> list[str]:
        c = self.config
        triggers = []
        if inputs.pending > c.bp_queue_threshold:
            triggers.append("queue_overload")
        if inputs.p95_ms > c.bp_latency_threshold_ms:
            triggers.append("latency_overload")
        if inputs.inflight > c.bp_inflight_threshold:
            triggers.append("inflight_overload")
        return triggers

    def evaluate(self, inputs: Inputs) -> str:
        """Two or more overloaded inputs -> active, exactly one -> warning, none -> inactive."""
        triggers = self.overloaded(inputs)
        status = ACTIVE if len(triggers) >= 2 else WARNING if triggers else INACTIVE
        previous, self.status = self.status, status
        if status == previous:
            return status
        subject = self.config.subject
        m = self.metrics
        if _RANK[status] < _RANK[previous]:
            m.backpressure_events.labels(subject, "recovery").inc()
            m.backpressure_recovery.labels(subject).inc()
        elif status != INACTIVE:
            m.backpressure_events.labels(subject, status).inc()
        if status == ACTIVE:
            for trigger in triggers:
                m.backpressure_triggered.labels(subject, trigger).inc()
        m.backpressure_active.labels(subject).set(1 if status == ACTIVE else 0)
        log.warning(
            "backpressure_status",
            status=status,
            previous=previous,
            triggers=",".join(triggers),
            pending=inputs.pending,
            p95_ms=round(inputs.p95_ms, 1),
            inflight=inputs.inflight,
        )
        return status
