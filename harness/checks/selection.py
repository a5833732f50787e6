"""The checks a scenario's expectations ask for, built against one run."""

from __future__ import annotations

from pathlib import Path

from harness.checks.alert_poller import AlertPoller
from harness.checks.alerts import AlertFiredCheck, ForbiddenAlertCheck
from harness.checks.base import Check
from harness.checks.boundary import BoundaryCheck
from harness.checks.dashboards import PanelCheck
from harness.checks.delivery import DeliveryCheck
from harness.checks.metrics import MetricCheck
from harness.config import Target
from harness.paths import deploy_dir
from harness.prometheus import PrometheusAPI
from harness.scenario import Scenario


def checks_for(
    scenario: Scenario, target: Target, prometheus: PrometheusAPI, poller: AlertPoller
) -> list[Check]:
    """One check per metric, per expected and forbidden alert, per panel, the boundary of a
    boundary variant, and delivery."""
    expect = scenario.expect
    step = target.profile.scrape_interval
    checks: list[Check] = [MetricCheck(m, prometheus, step) for m in expect.metrics]
    checks += [AlertFiredCheck(a, expect.alerts, poller) for a in expect.alerts.fire]
    checks += [ForbiddenAlertCheck(a, poller) for a in expect.alerts.forbid]
    dashboards = (
        Path(target.dashboards_dir)
        if target.dashboards_dir
        else deploy_dir() / "grafana" / "dashboards"
    )
    checks += [PanelCheck(p, prometheus, dashboards) for p in expect.dashboards]
    if scenario.boundary is not None:
        checks.append(BoundaryCheck(scenario.boundary.alert, scenario.boundary.side))
    if expect.delivery is not None:
        checks.append(DeliveryCheck(expect.delivery))
    return checks
