"""The service's own metrics, one registry per app, served at `/metrics`.

The names are a contract: `deploy/harness/` alert rules are written on exactly these (a fault
that outlives its run, a game-day that silently stopped happening, guard aborts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from harness.config import Target
from harness.faults.journal import Journal

RUN_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
SCENARIO_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 300, 600, 1800)


class _ActiveFaults(Collector):
    """`harness_faults_active{target}`: journal entries per known target, read at scrape time,
    so a fault a dead run left shows even though no run of this process applied it."""

    def __init__(self, targets: Callable[[], list[Target]]):
        self.targets = targets

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "harness_faults_active",
            "Faults in the fault journal of a target (injected, not yet proven healed)",
            labels=["target"],
        )
        for target in self.targets():
            family.add_metric([target.name], len(Journal.for_target(target).entries()))
        yield family


class ServiceMetrics:
    def __init__(self, targets: Callable[[], list[Target]]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs_total = Counter(
            "harness_runs_total", "Runs finished, by verdict", ["verdict"], registry=r
        )
        self.run_duration = Histogram(
            "harness_run_duration_seconds", "Wall time of a run", buckets=RUN_BUCKETS, registry=r
        )
        self.scenario_duration = Histogram(
            "harness_scenario_duration_seconds",
            "Wall time of one scenario of a run",
            ["scenario"],
            buckets=SCENARIO_BUCKETS,
            registry=r,
        )
        self.runs_active = Gauge("harness_runs_active", "Runs queued or running", registry=r)
        self.guard_aborts = Counter(
            "harness_guard_aborts_total", "Runs a guard aborted", ["guard"], registry=r
        )
        self.schedule_last_success = Gauge(
            "harness_schedule_last_success_timestamp_seconds",
            "When the schedule's last passed run ended (Unix seconds)",
            ["schedule"],
            registry=r,
        )
        self.schedule_runs = Counter(
            "harness_schedule_runs_total",
            "Schedule decisions: fired, skipped (target locked) or missed (service down)",
            ["schedule", "outcome"],
            registry=r,
        )
        r.register(_ActiveFaults(targets))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
