"""Preflight: before anything is injected, the target is healthy, nothing of ours is still in
effect, every fault of the scenario is possible on this target, and the alerts the scenario
names are quiet (an alert already active cannot be attributed to this scenario's faults).
"""

from __future__ import annotations

import time

import anyio

from harness.adapters import Adapters
from harness.checks.alert_poller import AlertPoller
from harness.config import Target
from harness.errors import HarnessError, ToxiproxyError
from harness.evidence.record import PreflightRecord, ProbeRecord, ToxiproxyState
from harness.faults.base import FaultDriver
from harness.faults.journal import Journal
from harness.prometheus import PrometheusAPI
from harness.prometheus_alerts import parse_timestamp
from harness.scenario import Scenario
from harness.toxiproxy_client import ToxiproxyClient


class PreflightFailed(HarnessError):
    """The scenario cannot start on this target; the message says why."""


async def preflight(
    target: Target,
    scenario: Scenario,
    drivers: list[FaultDriver],
    journal: Journal,
    run_id: str,
    poller: AlertPoller,
    adapters: Adapters,
    rules_reloaded_at: float | None = None,
) -> PreflightRecord:
    """The checks above, in order; raises PreflightFailed with every reason found.

    `rules_reloaded_at`: when the stack last reloaded its rule groups (a fresh alert state);
    the named alerts are judged quiet only once every group has evaluated since."""
    probes = await adapters.health()
    record = PreflightRecord(probes=[ProbeRecord.model_validate(p.as_dict()) for p in probes])
    down = [f"{p.name}: {p.detail}" for p in probes if not p.ok]
    if down:
        raise PreflightFailed("target not healthy: " + "; ".join(down))
    ours = [e["key"] for e in journal.entries() if e["key"].startswith(f"{run_id}-{scenario.id}-")]
    if ours:
        raise PreflightFailed(f"faults already active: {', '.join(ours)}")
    record.toxiproxy = await _proxies_clean(adapters.toxiproxy, scenario)
    reasons = []
    for index, driver in enumerate(drivers):
        reason = await driver.capable()
        if reason is not None:
            reasons.append(f"fault {index} ({driver.kind}): {reason}")
    if scenario.workload.http_rate > 0 and not target.router_decide_urls:
        reasons.append(
            "workload: the scenario sends synchronous decide requests, but the target names "
            "no router_decide_urls"
        )
    if reasons:
        raise PreflightFailed(
            "the target cannot take this scenario's faults: " + "; ".join(reasons)
        )
    record.capabilities = "every fault is possible on this target"
    started = time.monotonic()
    named = scenario.alerts_named()
    if named and rules_reloaded_at is not None:
        await _rules_evaluated_since(adapters.prometheus, rules_reloaded_at)
        record.waited_for_rule_evaluation_s = round(time.monotonic() - started, 1)
    while named:
        await poller.poll()
        active = poller.active() & named
        record.active_alerts = sorted(active)
        if not active:
            break
        record.waited_for_alerts_s = round(time.monotonic() - started, 1)
        await anyio.sleep(poller.interval)
    return record


async def _rules_evaluated_since(prometheus: PrometheusAPI, since: float) -> None:
    """A reloaded group's alerts are inactive until its first evaluation, so "quiet" would
    hold vacuously before it; bounded by the preflight phase's timeout."""
    while True:
        groups = await prometheus.rule_groups()
        evaluated = [parse_timestamp(g.get("lastEvaluation")) or 0.0 for g in groups]
        if evaluated and min(evaluated) >= since:
            return
        await anyio.sleep(0.2)


async def _proxies_clean(toxiproxy: ToxiproxyClient, scenario: Scenario) -> ToxiproxyState:
    try:
        proxies = await toxiproxy.proxies()
    except ToxiproxyError as exc:
        raise PreflightFailed(str(exc)) from exc
    state = ToxiproxyState(
        toxics={n: [t["name"] for t in p.get("toxics", [])] for n, p in proxies.items()},
        disabled=[n for n, p in proxies.items() if not p.get("enabled", True)],
    )
    for name in scenario.proxies():
        if state.toxics.get(name) or name in state.disabled:
            raise PreflightFailed(
                f"proxy {name} is already faulted: toxics {state.toxics.get(name)}, "
                f"disabled={name in state.disabled}"
            )
    return state
