"""Deliberate breakages of the NATS cluster alerts (deploy/prometheus/rules/nats-cluster-alerts.yml
and their Alertmanager routing), one per alert, the way teams break a rule file or a route.

Three cluster scenarios cover all six: CL-004 (quorum lost) expects the health, route,
leaderless and API-error alerts; CL-005 (a follower paused) the health and replica alerts;
CL-008 (repeated stepdowns) the frequent-leader-changes alert. The alerting contract stays
untouched, so each breakage must show as a failing check of the alert it broke. Every edit is
checked to have happened exactly once (breakages.replace_in_rule).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.broken.breakages import (
    ALERTMANAGER,
    Breakage,
    changed_alerts,
    replace_in_rule,
    rules_by_alert,
)

CLUSTER_RULES = Path("prometheus") / "rules" / "nats-cluster-alerts.yml"
CLUSTER_SCENARIOS = ("CL-004", "CL-005", "CL-008")

DEMOTED = Breakage(
    "NatsServerUnhealthy: severity critical -> warning",
    "CL-005",
    "alert NatsServerUnhealthy fires",
    "severity='warning' (contract: 'critical')",
)
SLOW = Breakage(
    "NatsRouteMissing: for 1m -> 30m (it cannot fire while a node is gone)",
    "CL-004",
    "alert NatsRouteMissing fires",
    "never fired",
)
MISROUTED = Breakage(
    "Alertmanager: a route sends NatsJetStreamLeaderless (critical) to router-warning",
    "CL-004",
    "alert NatsJetStreamLeaderless fires",
    "notification went to router-warning, the contract says router-critical",
)
AGGREGATED = Breakage(
    "NatsJetStreamReplicaUnhealthy: by (account, stream_name), the replica label aggregated away",
    "CL-005",
    "alert NatsJetStreamReplicaUnhealthy fires",
    "firing instances lack label(s) replica",
)
PER_SERVER = Breakage(
    "NatsJetStreamFrequentLeaderChanges: changes summed by (stream_name, server_name), so each"
    " server's own transitions (at most one per leader change) must exceed 4",
    "CL-008",
    "alert NatsJetStreamFrequentLeaderChanges fires",
    "never fired",
)
RENAMED = Breakage(
    "NatsJetStreamApiErrorRate: the errors counter misnamed gnatsd_varz_jetstream_api_errors"
    " (the exporter serves gnatsd_varz_jetstream_stats_api_errors)",
    "CL-004",
    "alert NatsJetStreamApiErrorRate fires",
    "never fired",
)
CLUSTER_BREAKAGES = (DEMOTED, SLOW, MISROUTED, AGGREGATED, PER_SERVER, RENAMED)

CLUSTER_CONSEQUENCES = {
    # the demoted health alert fires in CL-004 too, with the same wrong severity
    ("CL-004", "alert NatsServerUnhealthy fires"),
}

_REPLICA_BY = "by (account, stream_name, replica) (harness_nats_stream_replica_"


def break_cluster_rules_and_routing(source: Path, dest: Path) -> Path:
    """A copy of deploy/ with each of the six cluster alerts broken once: five in the rule file,
    one in the Alertmanager routing; the router's rules and the dashboards untouched."""
    shutil.copytree(source, dest)
    rules = dest / CLUSTER_RULES
    text = rules.read_text()
    text = replace_in_rule(text, "NatsServerUnhealthy", "severity: critical", "severity: warning")
    text = replace_in_rule(text, "NatsRouteMissing", "for: 1m", "for: 30m")
    for series in ("offline)", "current)", "lag)"):
        old = _REPLICA_BY + series
        new = old.replace(", replica)", ")")
        text = replace_in_rule(text, "NatsJetStreamReplicaUnhealthy", old, new)
    text = replace_in_rule(
        text,
        "NatsJetStreamFrequentLeaderChanges",
        "sum by (stream_name) (",
        "sum by (stream_name, server_name) (",
    )
    text = replace_in_rule(
        text,
        "NatsJetStreamApiErrorRate",
        "gnatsd_varz_jetstream_stats_api_errors",
        "gnatsd_varz_jetstream_api_errors",
    )
    rules.write_text(text)
    changed = changed_alerts(source / CLUSTER_RULES, rules)
    every = set(rules_by_alert(rules))
    assert changed == every - {"NatsJetStreamLeaderless"} and len(every) == 6, changed

    am = dest / ALERTMANAGER
    config = yaml.safe_load(am.read_text())
    route = config["route"]
    route["routes"] = [
        {"receiver": "router-warning", "matchers": ['alertname="NatsJetStreamLeaderless"']},
        *route["routes"],
    ]
    am.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest
