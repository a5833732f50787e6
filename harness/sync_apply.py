"""Preflight's step for a scenario's `nats: {sync_interval: …}`: make the target's NATS servers
run with it, or refuse the scenario.

Why here and not in the stack: whether a restart is needed is read back from the servers
(`/varz`), never assumed from what we last configured, and a cluster restarted is only fit for
a baseline once it is whole again (every stream led, every replica current), which the cluster
fault module already knows how to wait for. A local stack restarts its nodes with the setting
(and with its own again after the scenario, `restore`); an external target's servers are not
ours to restart, so a scenario that needs a setting they do not run is refused with the reason.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import structlog

from harness.config import Profile
from harness.errors import HarnessError, describe
from harness.faults.base import FaultContext
from harness.faults.cluster import snapshot, wait_whole
from harness.preflight import PreflightFailed
from harness.readback import durability, monitors_of
from harness.rulefiles import alert_rules
from harness.scenario import Scenario
from harness.stack import cluster as cluster_names
from harness.syncinterval import SyncIntervalApplied, mismatches
from harness.syncinterval import describe as describe_setting
from harness.timecompress import longest_range_s

log = structlog.get_logger("sync_apply")

WHOLE_WITHIN_S = 60.0
"""How long a restarted cluster may take to be whole again (every stream led and current)."""


RESTORE_WITHIN_S = 120.0
"""How long restoring the slot's own setting after a scenario may take (it runs shielded)."""


def _restarter(ctx: FaultContext) -> Any | None:
    """The local stack, if it can restart its NATS servers with another setting."""
    if ctx.target.kind != "local" or ctx.stack is None:
        return None
    return ctx.stack if hasattr(ctx.stack, "set_sync_interval") else None


async def apply(ctx: FaultContext, want: str | None) -> SyncIntervalApplied | None:
    """Make the servers run with `want` (None: the local slot's own setting, the server's
    default). Returns what ran, read back after any restart; None when the scenario set
    nothing and nothing had to change. Raises PreflightFailed when it cannot be done."""
    stack = _restarter(ctx)
    if want is None and stack is None:
        return None  # nothing asked, nothing of ours to restore
    monitors = monitors_of(ctx.target)
    if not monitors:
        if want is None:
            return None
        raise PreflightFailed(
            f"the scenario needs {describe_setting(want)}, but target {ctx.target.name} names "
            "no NATS monitoring endpoint to prove its servers run with it"
        )
    running = await durability(monitors)
    wrong = mismatches(want, running)
    if want is None:  # restoring: a node that does not answer is preflight's to report
        wrong = mismatches(want, [d for d in running if d.error is None])
    if not wrong:
        if want is None:
            return None
        return SyncIntervalApplied(wanted=want, running=running)
    if stack is None:
        raise PreflightFailed(
            f"the scenario needs {describe_setting(want)}, but target {ctx.target.name} runs "
            f"{'; '.join(wrong)}; the harness restarts only a local stack's servers: configure "
            "jetstream.sync_interval on the target, or run the scenario on a local slot"
        )
    started = time.monotonic()
    clustered = ctx.target.topology.kind == "cluster"

    async def whole(component: str) -> None:
        _, problems = await wait_whole(ctx, WHOLE_WITHIN_S)
        if problems:
            raise PreflightFailed(
                f"the cluster is not whole {WHOLE_WITHIN_S:g}s after {component} restarted "
                f"with {describe_setting(want)}: {'; '.join(problems)}"
            )

    try:
        order = await leaders_last(ctx) if clustered else None
        restarted = await stack.set_sync_interval(want, order, whole if clustered else None)
    except PreflightFailed:
        raise
    except HarnessError as exc:
        raise PreflightFailed(
            f"could not restart the NATS servers with {describe_setting(want)}: {exc}"
        ) from exc
    seconds = round(time.monotonic() - started, 2)
    running = await durability(monitors)
    wrong = mismatches(want, running)
    if wrong:
        raise PreflightFailed(
            f"restarted with {describe_setting(want)}, the servers report {'; '.join(wrong)}"
        )
    log.info("sync_interval_applied", wanted=want or "default", restarted=restarted, s=seconds)
    return SyncIntervalApplied(
        wanted=want or "default", restarted=restarted, restart_s=seconds, running=running
    )


async def leaders_last(ctx: FaultContext) -> list[str]:
    """The cluster's node components in restart order: followers first, then the meta
    leader, the stream leaders last. Each leadership then moves once, not once per restart:
    a rolling restart must not look like the leader churn an alert watches for."""
    snap = await snapshot(ctx)
    streams = {snap.stream_leader(s) for s in snap.streams()}
    meta = snap.meta_leader()
    nodes = sorted(snap.servers, key=lambda n: (n in streams, n == meta))
    return [cluster_names.component_name(n) for n in nodes]


def wanted(scenario: Scenario) -> str | None:
    """The sync interval the scenario sets, if it sets one."""
    return scenario.nats.sync_interval if scenario.nats is not None else None


def remembered_s(stack: Any, profile: Profile, alerts: set[str] | None = None) -> float:
    """How long the range windows of `alerts` (None: every rule) remember an event, on the
    profile's clock, plus a scrape and two evaluations. Why: a rolling restart moves each
    stream's leadership once, and the leader-churn alert's window must have forgotten that
    before a scenario's fault adds its own change (seen live: CL-009 fired it with the restart
    20 s before the kill, inside its 15 m window compressed ×30)."""
    rules = alert_rules(Path(stack.ctx.deploy_dir) / "prometheus" / "rules", profile)
    ranges = [
        longest_range_s(str(rule["expr"]))
        for name, (rule, _, _) in rules.items()
        if alerts is None or name in alerts
    ]
    return max(ranges, default=0.0) + profile.scrape_interval + 2 * profile.evaluation_interval


def _restarted_at(ctx: FaultContext) -> float | None:
    """When we last restarted the slot's servers (None: never, or not a local slot)."""
    stack = _restarter(ctx)
    return stack.read_state().nats_restarted_at if stack is not None else None


async def settle(at: float | None, window_s: float) -> float:
    """Wait until our last restart of the servers (at `at`) is `window_s` old; the seconds
    waited."""
    remaining = 0.0 if at is None else at + window_s - time.time()
    if remaining > 0:
        log.info("nats_restart_settling", seconds=round(remaining, 2))
        await anyio.sleep(remaining)
    return max(0.0, remaining)


async def prepare(ctx: FaultContext, scenario: Scenario) -> SyncIntervalApplied | None:
    """Preflight's step: the scenario's sync interval in force (or the slot's own), then no
    restart of ours still inside the windows of the alerts the scenario names, so what they
    see is the scenario's fault, not our preparation."""
    applied = await apply(ctx, wanted(scenario))
    stack, at = _restarter(ctx), _restarted_at(ctx)
    if stack is None or at is None:
        return applied  # no restart of ours to wait out: the rule files need not be read
    waited = await settle(at, remembered_s(stack, ctx.target.profile, scenario.alerts_named()))
    if waited and applied is None:
        applied = SyncIntervalApplied(wanted="default")
    if applied is not None and waited:
        applied.settled_s = round(waited, 2)
    return applied


async def restore(ctx: FaultContext) -> None:
    """After a scenario that set a sync interval: the local slot's own setting again, so the
    next scenario runs as the slot is configured, then (outside any phase's deadline) until
    no alert rule's window remembers the restart. Never raises: a failure is logged, and the
    next scenario's preflight restores it (or refuses to start)."""
    try:
        with anyio.fail_after(RESTORE_WITHIN_S):
            if await apply(ctx, None) is not None and (stack := _restarter(ctx)) is not None:
                await settle(_restarted_at(ctx), remembered_s(stack, ctx.target.profile))
    except Exception as exc:  # logged; the next preflight tries again
        log.warning("sync_interval_restore_failed", error=describe(exc))
