"""Deliberate breakages of the observability, the way real teams break it, applied to the files
the stack loads (copies of deploy/ and router/), with the alerting contract untouched.

Stack A breaks rules and routing; stack B breaks the router's code and a dashboard. Every edit
is checked to have happened exactly once, so a change in deploy/ or router/ makes these tests
fail loudly instead of testing an unbroken copy.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

RULES = Path("prometheus") / "rules" / "router-alerts.yml"
ALERTMANAGER = Path("alertmanager") / "alertmanager.yml"
DASHBOARD = Path("grafana") / "dashboards" / "router-jetstream.json"


@dataclass(frozen=True)
class Breakage:
    """One breakage: where, what, and the check (scenario, check name) that must catch it."""

    what: str
    scenario: str
    check: str
    caught_by: str  # text the failing check's summary must contain


# --- stack A: rules and Alertmanager routing ---------------------------------------------------
LONG_FOR = Breakage(
    "RouterJetStreamMaxDeliverExhausted: for 2m -> 6m (three times longer)",
    "S3",
    "alert RouterJetStreamMaxDeliverExhausted fires",
    "after the fault, objective",
)
RAISED_THRESHOLD = Breakage(
    "RouterNatsHighAckFailureRate: > 0.01 -> > 0.1 (the contract promises 1 %)",
    "S1@above",
    "alert RouterNatsHighAckFailureRate fires",
    "never fired",
)
SEVERITY = Breakage(
    "RouterDLQHighRateCritical: severity critical -> warning",
    "S3",
    "alert RouterDLQHighRateCritical fires",
    "severity='warning' (contract: 'critical')",
)
DEAD_RULE = Breakage(
    "RouterNatsConnectionDown: an expression that errors at every evaluation",
    "S1@above",
    "alert RouterNatsConnectionDown stays silent",
    "its rule is not healthy",
)
MISROUTE = Breakage(
    "Alertmanager: a route sends RouterJetStreamHighRedeliveryRate (warning) to router-critical",
    "S3",
    "alert RouterJetStreamHighRedeliveryRate fires",
    "notification went to router-critical, the contract says router-warning",
)
NULL_RECEIVER = Breakage(
    "Alertmanager: RouterJetStreamHighRedeliveryFromSource routed to a receiver notifying nobody",
    "S3",
    "alert RouterJetStreamHighRedeliveryFromSource fires",
    "no firing notification reached router-warning",
)
RESOLVED_OFF = Breakage(
    "Alertmanager: router-critical sends no resolved notifications (send_resolved: false)",
    "S3",
    "alert RouterJetStreamMaxDeliverExhausted fires",
    "no resolved notification reached router-critical",
)
INHIBITED = Breakage(
    "Alertmanager: an inhibition lets RouterDLQHighRateCritical silence RouterDLQHighRate",
    "S3",
    "alert RouterDLQHighRate fires",
    "Alertmanager held it suppressed while it fired",
)
STACK_A = (
    LONG_FOR,
    RAISED_THRESHOLD,
    SEVERITY,
    DEAD_RULE,
    MISROUTE,
    NULL_RECEIVER,
    RESOLVED_OFF,
    INHIBITED,
)
SCENARIOS_A = ("S1@above", "S3")

# --- stack B: the router's code and a dashboard ------------------------------------------------
NO_ACK_FAILURE_COUNT = Breakage(
    "router: ACK failures are no longer counted",
    "S1",
    "metric sum by (reason, subject, stream, consumer) (rate(router_nats_ack_failures_total"
    "[$window]))",
    "did not move up",
)
WRONG_LABEL = Breakage(
    'router: dead letters counted with assignment_id="unknown"',
    "S3",
    "metric sum by (reason, source, assignment_id) (rate(router_dlq_total[$window]))",
    "did not move up",
)
EARLY_DLQ = Breakage(
    "router: poison is dead-lettered after 3 deliveries instead of max_deliver (5)",
    "S3",
    "delivery invariants",
    "dead-lettered before max_deliver 5",
)
BROKEN_PANEL = Breakage(
    "dashboard: DLQ Inflow Rate (Total) queries a misspelt metric",
    "S3",
    "panel router-jetstream / DLQ Inflow Rate (Total)",
    "query A returned no data",
)
STACK_B = (NO_ACK_FAILURE_COUNT, WRONG_LABEL, EARLY_DLQ, BROKEN_PANEL)
SCENARIOS_B = ("S1", "S3")

# --- stack C: dashboard panels only (router, rules and routing unbroken) ------------------------
RATIO_REF = Breakage(
    "dashboard: NATS Operation Failure Ratios, the `ack` query (C) pointed at the NAK metrics",
    "S1",
    "panel router-jetstream / NATS Operation Failure Ratios",
    "query C returned no data",  # no NAKs in S1: the NAK ratio is 0/0, an empty line
)
TOTAL_METRIC = Breakage(
    "dashboard: Total NATS Failures sums the NAK failures twice instead of the ACK failures",
    "S1",
    "panel router-jetstream / Total NATS Failures",
    "no query moved up in the fault window",
)
BY_LABEL = Breakage(
    "dashboard: Redeliveries by Delivery Count aggregates by (reason), not by (delivery_count)",
    "S3",
    "panel router-jetstream / Redeliveries by Delivery Count",
    "series lack legend label(s) delivery_count",
)
STACK_C = (RATIO_REF, TOTAL_METRIC, BY_LABEL)
SCENARIOS_C = ("S1", "S3")

DEAD_EXPR = "max without (state) (router_nats_connection_status) * on() group_left() up < 1"
"""`up` has one series per scrape target: on() matches them all on the right, so every
evaluation fails with "found duplicate series" and the rule never produces a result."""


def _rule_block(lines: list[str], alert: str) -> tuple[int, int]:
    """[start, end) line indexes of the rule `- alert: <alert>` in a rule file."""
    starts = [i for i, line in enumerate(lines) if line.strip() == f"- alert: {alert}"]
    if len(starts) != 1:
        raise AssertionError(f"expected one rule {alert}, found {len(starts)}")
    start = starts[0]
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines):
        line = lines[end]
        stripped = line.lstrip()
        if stripped and len(line) - len(stripped) <= indent:
            break
        end += 1
    return start, end


def replace_in_rule(text: str, alert: str, old: str, new: str) -> str:
    """`old` → `new` inside the rule for `alert` only (exactly one occurrence there)."""
    lines = text.splitlines(keepends=True)
    start, end = _rule_block(lines, alert)
    block = "".join(lines[start:end])
    if block.count(old) != 1:
        raise AssertionError(f"{old!r} occurs {block.count(old)} times in rule {alert}")
    return "".join(lines[:start]) + block.replace(old, new) + "".join(lines[end:])


def set_expr(text: str, alert: str, expr: str) -> str:
    """Replace the (block scalar) `expr:` of the rule for `alert` with a one-line `expr`."""
    lines = text.splitlines(keepends=True)
    start, end = _rule_block(lines, alert)
    at = [i for i in range(start, end) if lines[i].strip().startswith("expr:")]
    if len(at) != 1:
        raise AssertionError(f"rule {alert} has {len(at)} expr lines")
    first = at[0]
    indent = len(lines[first]) - len(lines[first].lstrip())
    last = first + 1
    while last < end and (
        not lines[last].strip() or len(lines[last]) - len(lines[last].lstrip()) > indent
    ):
        last += 1
    new = " " * indent + f"expr: {expr}\n"
    return "".join(lines[:first]) + new + "".join(lines[last:])


def rules_by_alert(path: Path) -> dict[str, dict]:
    doc = yaml.safe_load(path.read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def changed_alerts(reference: Path, edited: Path) -> set[str]:
    """The alerts whose rule differs between two copies of a rule file (every alert of
    `reference` must still be in `edited`)."""
    before, after = rules_by_alert(reference), rules_by_alert(edited)
    return {a for a in before if after[a] != before[a]}


def break_rules_and_routing(source: Path, dest: Path) -> Path:
    """Stack A: copy deploy/ and break rules and routing; returns `dest`."""
    shutil.copytree(source, dest)
    rules = dest / RULES
    text = rules.read_text()
    text = replace_in_rule(text, "RouterJetStreamMaxDeliverExhausted", "for: 2m", "for: 6m")
    text = replace_in_rule(text, "RouterNatsHighAckFailureRate", "> 0.01", "> 0.1")
    text = replace_in_rule(
        text, "RouterDLQHighRateCritical", "severity: critical", "severity: warning"
    )
    text = set_expr(text, "RouterNatsConnectionDown", DEAD_EXPR)
    rules.write_text(text)
    changed = changed_alerts(source / RULES, rules)
    assert changed == {
        "RouterJetStreamMaxDeliverExhausted",
        "RouterNatsHighAckFailureRate",
        "RouterDLQHighRateCritical",
        "RouterNatsConnectionDown",
    }, changed

    am = dest / ALERTMANAGER
    config = yaml.safe_load(am.read_text())
    route = config["route"]
    route["routes"] = [
        {
            "receiver": "router-critical",
            "matchers": ['alertname="RouterJetStreamHighRedeliveryRate"'],
        },
        {
            "receiver": "router-null",
            "matchers": ['alertname="RouterJetStreamHighRedeliveryFromSource"'],
        },
        *route["routes"],
    ]
    config["receivers"].append({"name": "router-null"})
    (critical,) = [r for r in config["receivers"] if r["name"] == "router-critical"]
    assert critical["webhook_configs"][0]["send_resolved"] is True
    critical["webhook_configs"][0]["send_resolved"] = False
    assert not config.get("inhibit_rules"), "deploy/ has inhibitions now: revisit INHIBITED"
    config["inhibit_rules"] = [
        {
            "source_matchers": ['alertname="RouterDLQHighRateCritical"'],
            "target_matchers": ['alertname="RouterDLQHighRate"'],
            "equal": ["service"],
        }
    ]
    am.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def _patch_package(root: Path, pattern: str, replacement: str) -> None:
    """Apply a regex to the one file of the package where it matches, exactly once."""
    hits = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        found = len(re.findall(pattern, text))
        if found:
            hits.append((path, found, text))
    if len(hits) != 1 or hits[0][1] != 1:
        raise AssertionError(f"{pattern!r} matched {[(str(p), n) for p, n, _ in hits]}")
    path, _, text = hits[0]
    path.write_text(re.sub(pattern, replacement, text))


def break_router(source: Path, dest: Path) -> Path:
    """Stack B's router: a copy of the `router` package with three code breakages; returns the
    directory to put first on the router's PYTHONPATH."""
    package = dest / "router"
    shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__"))
    _patch_package(
        package,
        r"(self\.metrics\.ack_failures\.labels\([^)]*\))\.inc\(\)",
        r"\1  # breakage: not counted",
    )
    _patch_package(package, r"(dlq_total\.labels\(\s*)c\.assignment_id", r'\1"unknown"')
    _patch_package(package, r"if delivery >= c\.max_deliver:", "if delivery >= 3:")
    return dest


def break_dashboard(source: Path, dest: Path) -> Path:
    """Stack B's deploy/: a copy whose DLQ inflow panel queries a misspelt metric."""
    shutil.copytree(source, dest)
    path = dest / DASHBOARD
    doc = json.loads(path.read_text())
    panels = [p for row in doc["panels"] for p in [row, *row.get("panels", [])]]
    (panel,) = [p for p in panels if p.get("title") == "DLQ Inflow Rate (Total)"]
    (target,) = panel["targets"]
    assert "router_dlq_total" in target["expr"], target
    target["expr"] = target["expr"].replace("router_dlq_total", "router_dlq_totl")
    path.write_text(json.dumps(doc, indent=2))
    return dest


def _panel(doc: dict, title: str) -> dict:
    (panel,) = [
        p for row in doc["panels"] for p in [row, *row.get("panels", [])] if p.get("title") == title
    ]
    return panel


def _swap(panel: dict, ref: str, old: str, new: str) -> None:
    """`old` → `new` in the query `ref` of `panel`, where it must occur."""
    (target,) = [t for t in panel["targets"] if t["refId"] == ref]
    assert old in target["expr"], (panel["title"], ref, target["expr"])
    target["expr"] = target["expr"].replace(old, new)


def break_panels(source: Path, dest: Path) -> Path:
    """Stack C's deploy/: a copy whose dashboard has three panels broken the way an edit breaks
    them; the rules, routing and router are untouched."""
    shutil.copytree(source, dest)
    path = dest / DASHBOARD
    doc = json.loads(path.read_text())
    _swap(_panel(doc, "NATS Operation Failure Ratios"), "C", "router_nats_ack_", "router_nats_nak_")
    _swap(
        _panel(doc, "Total NATS Failures"),
        "A",
        "sum(rate(router_nats_ack_failures_total",
        "sum(rate(router_nats_nak_failures_total",
    )
    _swap(
        _panel(doc, "Redeliveries by Delivery Count"),
        "A",
        "sum by (delivery_count)",
        "sum by (reason)",
    )
    path.write_text(json.dumps(doc, indent=2))
    return dest
