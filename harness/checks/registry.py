"""The check registry: one check class per kind, like the fault drivers' registry.

A check class is its kind's one module: its expectation (spec) model, evidence model, how its
checks are built from a scenario, observed and judged, and how the report, the coverage matrix
and `harness rejudge` read its evidence. Everything outside the checks iterates this registry
instead of matching kind names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import create_model

from harness.checks.alerts import AlertFiredCheck, ForbiddenAlertCheck
from harness.checks.base import Check, Setup
from harness.checks.boundary import BoundaryCheck
from harness.checks.dashboards import PanelCheck
from harness.checks.data_loss import DataLossCheck
from harness.checks.delivery import DeliveryCheck
from harness.checks.metrics import MetricCheck
from harness.checks.scrape import ScrapeCheck
from harness.config import Strict

if TYPE_CHECKING:
    from harness.checks.alert_poller import AlertPoller
    from harness.config import Target
    from harness.evidence.record import ScenarioResult
    from harness.prometheus import PrometheusAPI
    from harness.scenario import Scenario

CheckKind = Literal[
    "metric",
    "alert",
    "alert_forbidden",
    "dashboard",
    "boundary",
    "delivery",
    "scrape_up",
    "data_loss",
]
"""Every check kind (`CheckResult.kind`); one class each in CHECKS (a test holds them equal)."""

CHECKS: dict[str, type[Check]] = {
    c.kind: c
    for c in (
        MetricCheck,
        AlertFiredCheck,
        ForbiddenAlertCheck,
        PanelCheck,
        BoundaryCheck,
        DeliveryCheck,
        ScrapeCheck,
        DataLossCheck,
    )
}
"""Every check kind, in the order a scenario's checks are built (and reported)."""


def check_class(kind: str) -> type[Check]:
    """The check class of a kind (a ValueError names the known ones)."""
    try:
        return CHECKS[kind]
    except KeyError:
        raise ValueError(f"unknown check kind {kind!r}; known: {', '.join(CHECKS)}") from None


def expectations_model() -> type[Strict]:
    """The model of a scenario's `expect:`: one key per check kind that reads one."""
    fields = {c.expects[0]: c.expects[1:] for c in CHECKS.values() if c.expects is not None}
    return create_model(  # type: ignore[call-overload, no-any-return]
        "Expectations",
        __base__=Strict,
        __module__="harness.scenario",
        __doc__="What a scenario must observe: one key per check kind (see the registry).",
        **fields,
    )


def checks_for(
    scenario: Scenario, target: Target, prometheus: PrometheusAPI, poller: AlertPoller
) -> list[Check]:
    """Every check a scenario asks for, kind by kind."""
    setup = Setup(target, prometheus, poller)
    return [c for cls in CHECKS.values() for c in cls.build(scenario, setup)]


def unproven_forbidden(results: list[ScenarioResult]) -> dict[str, list[str]]:
    """Alerts some scenario forbade that no scenario of these results proved able to fire."""
    facts = [(r, check_class(c.kind).facts(c)) for r in results for c in r.checks]
    proven = {a for _, f in facts for a in f.alerts_proven}
    forbidden: dict[str, list[str]] = {}
    for result, f in facts:
        for alert in sorted(f.alerts_forbidden - proven):
            forbidden.setdefault(alert, []).append(result.scenario_id)
    return forbidden
