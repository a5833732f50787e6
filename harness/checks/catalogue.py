"""The checks a scenario's expectations ask for, built against one target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.checks.alerts import AlertFiredCheck, ForbiddenAlertCheck
from harness.checks.base import Check
from harness.checks.dashboards import PanelCheck
from harness.checks.delivery import DeliveryCheck
from harness.checks.metrics import MetricCheck
from harness.config import Target
from harness.paths import deploy_dir
from harness.prometheus import PrometheusAPI
from harness.scenario import Scenario


def checks_for(
    scenario: Scenario, target: Target, ledger_summary: Callable[[], Any] | None = None
) -> list[Check]:
    """One check per metric, per expected and forbidden alert, per panel, plus delivery."""
    prometheus = PrometheusAPI(target.prometheus_url)
    expect = scenario.expect
    step = target.profile.scrape_interval
    checks: list[Check] = [MetricCheck(m, prometheus, step) for m in expect.metrics]
    checks += [
        AlertFiredCheck(
            a,
            prometheus,
            resolve_after_heal=expect.alerts.resolve_after_heal,
            rules_dir=deploy_dir() / "prometheus" / "rules",
            alertmanager_config=deploy_dir() / "alertmanager" / "alertmanager.yml",
        )
        for a in expect.alerts.fire
    ]
    checks += [ForbiddenAlertCheck(a, prometheus) for a in expect.alerts.forbid]
    checks += [
        PanelCheck(p, prometheus, deploy_dir() / "grafana" / "dashboards")
        for p in expect.dashboards
    ]
    if expect.delivery is not None and ledger_summary is not None:
        checks.append(DeliveryCheck(expect.delivery, ledger_summary))
    return checks
