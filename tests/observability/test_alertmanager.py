"""Alertmanager config: valid, routes each severity to its receiver, URLs follow the convention."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yaml

from ._support import ALERTMANAGER_CONFIG, alert_rules, binary, run

CONFIG = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
RECEIVERS = {receiver["name"]: receiver for receiver in CONFIG["receivers"]}


def test_amtool_check_config() -> None:
    amtool = binary("amtool")
    result = run([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_grouping_and_production_timers() -> None:
    route = CONFIG["route"]
    assert set(route["group_by"]) == {"alertname", "service"}
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "30s",
        "5m",
        "4h",
    )


@pytest.mark.parametrize("name", sorted(RECEIVERS))
def test_webhooks_follow_the_harness_convention(name: str) -> None:
    """The local stack keeps the URL path and swaps host/port: the path must name the receiver."""
    hooks = RECEIVERS[name].get("webhook_configs") or []
    assert hooks, f"{name} has no webhook"
    for hook in hooks:
        url = urlsplit(hook["url"])
        expected = ("http", "harness:9095", f"/alertmanager/{name}")
        assert (url.scheme, url.netloc, url.path) == expected
        assert hook.get("send_resolved") is True


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"severity": "critical"}, "router-critical"),
        ({"severity": "warning"}, "router-warning"),
        ({"severity": "info"}, "router-default"),
    ],
)
def test_routes_by_severity(labels: dict[str, str], receiver: str) -> None:
    amtool = binary("amtool")
    args = [f"{key}={value}" for key, value in {"service": "router", **labels}.items()]
    result = run(
        [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *args]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]


def test_every_rule_reaches_the_receiver_of_its_severity() -> None:
    """No alert of ours falls through to the default (or nowhere): checked with amtool itself."""
    amtool = binary("amtool")
    rules = alert_rules()
    assert rules, "no alert rule found"
    for rule in rules:
        labels = {"alertname": rule["alert"], **rule["labels"]}
        args = [f"{key}={value}" for key, value in labels.items()]
        result = run(
            [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *args]
        )
        assert result.stdout.split() == [f"router-{rule['labels']['severity']}"], rule["alert"]
