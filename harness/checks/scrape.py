"""Scrape checks: the named Prometheus jobs stayed scrapeable through the whole scenario.

A fault that takes a metrics endpoint down too (a proxy in front of it, a killed process) leaves
gaps every other metric check reads as "no change". `expect: {scrape_up: [router]}` proves the
job's every target answered each scrape from the baseline to the end of recovery (`up` == 1 in
every sample Prometheus stored), so the silence of the other checks means something.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import Field

from harness.checks.base import Check, JudgeContext, Judged, RunView, Setup
from harness.checks.metrics import SeriesRecord
from harness.evidence.record import CheckEvidence, Status

if TYPE_CHECKING:
    from harness.prometheus import PrometheusAPI
    from harness.scenario import Scenario


class ScrapeEvidence(CheckEvidence):
    """The job's `up` samples per target, as Prometheus stored them over the scenario."""

    job: str = ""
    window: tuple[float, float] | None = None
    series: list[SeriesRecord] = Field(default_factory=list)


def judge_scrape(obs: ScrapeEvidence) -> tuple[Status, str]:
    """Every target of the job answered every scrape; no target at all is an error."""
    if not obs.series:
        return "error", f"Prometheus has no `up` series for job {obs.job!r}"
    down = {
        s.labels.get("instance", "?"): [t for t, v in s.points if v != 1]
        for s in obs.series
        if any(v != 1 for _, v in s.points)
    }
    if down:
        shown = ", ".join(f"{i} ({len(ts)} scrape(s) from {min(ts):.0f})" for i, ts in down.items())
        return "fail", f"job {obs.job} failed scrapes: {shown}"
    samples = sum(len(s.points) for s in obs.series)
    return "pass", f"job {obs.job}: {len(obs.series)} target(s) up in all {samples} scrapes"


class ScrapeCheck(Check):
    """One job whose targets must stay up."""

    kind = "scrape_up"
    evidence_model = ScrapeEvidence
    expects = ("scrape_up", list[str], Field(default_factory=list))

    def __init__(self, job: str, prometheus: PrometheusAPI):
        super().__init__(f"scrape job {job} stays up")
        self.job = job
        self.prometheus = prometheus

    @classmethod
    def build(cls, scenario: Scenario, setup: Setup) -> list[Check]:
        return [cls(job, setup.prometheus) for job in scenario.expect.scrape_up]

    async def collect(self, run: RunView) -> ScrapeEvidence:
        start, now = run.started(), time.time()
        stored = await self.prometheus.raw_samples(f'up{{job="{self.job}"}}', start, now)
        return ScrapeEvidence(
            job=self.job,
            window=(start, now),
            series=[SeriesRecord(labels=s.labels, points=s.points) for s in stored],
        )

    @classmethod
    def judge(cls, evidence: ScrapeEvidence, ctx: JudgeContext) -> Judged:
        status, summary = judge_scrape(evidence)
        return Judged(status, summary, evidence)
