"""A deliberately broken copy of `deploy/`: one breakage per alert, plus the scenario that
expects all those alerts (and one unbroken one, the control).

Every edit is checked to have happened exactly once and to be what the loaded YAML now says,
so a change in `deploy/` makes these tests fail loudly instead of testing an unbroken copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

RULES = Path("prometheus") / "rules" / "router-alerts.yml"
ALERTMANAGER = Path("alertmanager") / "alertmanager.yml"

# 1. The canonical file's ratio alert as written (catalogue §4.3): a labelled numerator over an
#    unlabelled denominator. `ack_total + ack_failures_total` matches no label set, so the
#    expression is always empty and the alert can never fire.
CANONICAL_ACK = "RouterNatsHighAckFailureRate"
CANONICAL_ACK_EXPR = (
    "(rate(router_nats_ack_failures_total[5m]) / (rate(router_nats_ack_total[5m])"
    " + rate(router_nats_ack_failures_total[5m]) + 1)) > 0.01"
)
# 2. A threshold out of reach: 1000 dead-letters/s at a 20 msg/s workload.
THRESHOLD = "RouterDLQHighRate"
THRESHOLD_FROM, THRESHOLD_TO = (
    "sum(rate(router_dlq_total[5m])) > 0.1",
    ("sum(rate(router_dlq_total[5m])) > 1000"),
)
# 3. A `for:` five times the reference (2m → 10m; 4 s → 20 s compressed, budget 17 s), still
#    short enough to fire inside the 40 s fault.
LONG_FOR = "RouterJetStreamMaxDeliverExhausted"
LONG_FOR_FROM, LONG_FOR_TO = "for: 2m", "for: 10m"
# 4. Alertmanager: severity="warning" still routes to `router-warning`, but that receiver has
#    lost its webhook, so a warning fires and is received but never notified.
DROPPED = "RouterJetStreamHighRedeliveryFromSource"  # severity: warning
DROPPED_RECEIVER = "router-warning"
# 5. A metric renamed in one rule (the router exports `..._redelivered_messages_total`).
RENAMED = "RouterJetStreamHighRedeliveryRate"
RENAMED_FROM = "router_jetstream_redelivered_messages_total"
RENAMED_TO = "router_jetstream_redelivered_msgs_total"
# The control: unbroken, fires in the same run, must pass.
CONTROL = "RouterDLQHighRateCritical"

BROKEN = {CANONICAL_ACK, THRESHOLD, LONG_FOR, DROPPED, RENAMED}

FAULT_S = 40

SCENARIO = f"""\
id: BROKEN-001
title: ACK errors plus poison, against deliberately broken observability
description: |
  S1's intermittent ACK errors and S3's poison at once, so the ACK, redelivery, MaxDeliver and
  DLQ alerts all have a reason to fire. Against the unbroken deploy/ every check passes.
faults:
  - kind: router_hook
    operation: ack
    mode: intermittent
    probability: 0.5
    fault: {{mode: error, reason: timeout}}
    start: 0s
    duration: {FAULT_S}s
  - kind: poison
    fraction: 0.2
    start: 0s
    duration: {FAULT_S}s
workload:
  rate: 20
  mix: {{valid: 1.0}}
expect:
  metrics:
    # the data each broken rule had to work with
    - query: sum by (reason) (rate(router_nats_ack_failures_total[$window]))
      moved: up
      labels: {{reason: timeout}}
    - query: sum(rate(router_jetstream_redelivered_messages_total[$window]))
      moved: up
    - query: sum(rate(router_jetstream_maxdeliver_exhausted_total[$window]))
      moved: up
    - query: sum(rate(router_dlq_total[$window]))
      moved: up
  alerts:
    fire: [{CANONICAL_ACK}, {THRESHOLD}, {LONG_FOR}, {DROPPED}, {RENAMED}, {CONTROL}]
    forbid: [RouterNatsConnectionDown]
    resolve_after_heal: true
  delivery:
    lost: 0
    max_duplicates_per_message: 4
    poison_dead_lettered: true
  dashboards:
    - {{dashboard: router-jetstream, panel: NATS ACK Failures by Reason}}
timeouts:
  baseline: 10s
  recover: 45s
"""


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


def expr_line(path: Path, alert: str) -> int:
    """1-based line of the `expr:` key of the rule for `alert`."""
    lines = path.read_text().splitlines(keepends=True)
    start, end = _rule_block(lines, alert)
    return next(i + 1 for i in range(start, end) if lines[i].strip().startswith("expr:"))


def break_deploy(source: Path, dest: Path) -> Path:
    """Copy `source` (a deploy/ dir) to `dest` and apply every breakage; returns `dest`."""
    shutil.copytree(source, dest)
    rules_path = dest / RULES
    reference = rules_by_alert(source / RULES)

    text = rules_path.read_text()
    text = set_expr(text, CANONICAL_ACK, CANONICAL_ACK_EXPR)
    text = replace_in_rule(text, THRESHOLD, THRESHOLD_FROM, THRESHOLD_TO)
    text = replace_in_rule(text, LONG_FOR, LONG_FOR_FROM, LONG_FOR_TO)
    text = replace_in_rule(text, RENAMED, RENAMED_FROM, RENAMED_TO)
    rules_path.write_text(text)

    broken = rules_by_alert(rules_path)
    assert broken[CANONICAL_ACK]["expr"] == CANONICAL_ACK_EXPR
    assert THRESHOLD_TO in broken[THRESHOLD]["expr"]
    assert broken[LONG_FOR]["for"] == "10m" and reference[LONG_FOR]["for"] == "2m"
    assert RENAMED_TO in broken[RENAMED]["expr"] and RENAMED_FROM not in broken[RENAMED]["expr"]
    changed = {a for a in reference if broken[a] != reference[a]}
    assert changed == BROKEN - {DROPPED}, changed
    assert broken[DROPPED]["labels"]["severity"] == "warning"
    assert broken[CONTROL]["labels"]["severity"] == "critical"

    am_path = dest / ALERTMANAGER
    config = yaml.safe_load(am_path.read_text())
    routes = config["route"]["routes"]
    assert any(
        r["receiver"] == DROPPED_RECEIVER and 'severity="warning"' in r["matchers"] for r in routes
    ), routes
    (receiver,) = [r for r in config["receivers"] if r["name"] == DROPPED_RECEIVER]
    assert receiver.pop("webhook_configs"), receiver
    am_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest
