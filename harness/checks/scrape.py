"""Scrape checks: the named Prometheus jobs stayed scrapeable through the whole scenario.

A fault that takes a metrics endpoint down too (a proxy in front of it, a killed process) leaves
gaps every other metric check reads as "no change". `expect: {scrape_up: [router]}` proves the
job's every target answered each scrape from the baseline to the end of recovery (`up` == 1 in
every sample Prometheus stored, and no stretch of the window without a sample: a job dropped from
the configuration stores no failed scrape, it just stops), so the silence of the other checks
means something.
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


def scrape_interval(obs: ScrapeEvidence) -> float | None:
    """The job's scrape interval as its stored samples show it (the median step; None with
    fewer than two samples in every series)."""
    steps = sorted(
        b[0] - a[0] for s in obs.series for a, b in zip(s.points, s.points[1:], strict=False)
    )
    return steps[len(steps) // 2] if steps else None


def unscraped(obs: ScrapeEvidence) -> dict[str, list[tuple[float, float]]]:
    """Per target, the stretches of the window with no scrape at all (a job removed from the
    configuration, Prometheus not scraping): longer than three scrape intervals (plus 2 s for
    the last scrape's ingestion). A failed scrape is stored (`up` 0): this is what is not."""
    interval = scrape_interval(obs)
    if obs.window is None or interval is None:
        return {}
    slack = 3 * interval + 2
    start, end = obs.window
    gaps: dict[str, list[tuple[float, float]]] = {}
    for s in obs.series:
        times = [start, *(t for t, _ in s.points), end]
        found = [(a, b) for a, b in zip(times, times[1:], strict=False) if b - a > slack]
        if found:
            gaps[s.labels.get("instance", "?")] = found
    return gaps


def judge_scrape(obs: ScrapeEvidence) -> tuple[Status, str]:
    """Every target of the job answered every scrape, and was scraped all through the window;
    no target at all is an error."""
    if not obs.series:
        return "error", f"Prometheus has no `up` series for job {obs.job!r}"
    down = {
        s.labels.get("instance", "?"): [t for t, v in s.points if v != 1]
        for s in obs.series
        if any(v != 1 for _, v in s.points)
    }
    gaps = unscraped(obs)
    if down or gaps:
        shown = [f"{i} ({len(ts)} scrape(s) from {min(ts):.0f})" for i, ts in down.items()]
        failed = f"job {obs.job} failed scrapes: {', '.join(shown)}" if shown else ""
        unseen = ", ".join(
            f"{i} ({' '.join(f'{a:.0f}-{b:.0f}' for a, b in spans)})" for i, spans in gaps.items()
        )
        not_scraped = f"job {obs.job} not scraped: {unseen}" if unseen else ""
        return "fail", "; ".join(part for part in (failed, not_scraped) if part)
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
