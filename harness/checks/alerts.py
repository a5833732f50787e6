"""Alert checks, judged against the alerting contract at every layer.

Expected alert: Prometheus fired it (from the `ALERTS` series it writes at each evaluation),
with the contract's labels, within the contract's detection objective and before the fault was
healed; Alertmanager held it unsuppressed; the notification reached the contract's receiver at or
after the first firing, carrying the alert's labels; and, where the contract promises it, the
resolved notification arrived within the resolve objective. Beside the objective the evidence
records the *floor* the loaded rule implies (scrape + evaluation + `for:` + two scrapes for the
window), from the intervals Prometheus itself reports, so a reader sees the slack.

Forbidden alert: never firing (pending is recorded as a near miss: it pages nobody), and its
rule provably alive (loaded, healthy, evaluated during the window): "never fired" proves
nothing about a rule that cannot run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio

from harness.checks.alert_poller import AlertPoller
from harness.checks.base import Check, CheckResult, RunView, result
from harness.contract import AlertContract
from harness.errors import ReceiverError
from harness.evidence.record import Status
from harness.notifications import Notification
from harness.prometheus import PrometheusAPI
from harness.specs.expectations import AlertExpectation, ContractOverride

TOLERANCE_S = 0.5
"""Clock slack between a sample's evaluation timestamp and our own wall clock."""


@dataclass(frozen=True)
class Objectives:
    """The contract entry on the target's clock (seconds), overrides applied."""

    labels: dict[str, str]
    carries: list[str]
    receiver: str
    send_resolved: bool
    detect_s: float
    resolve_s: float
    notify_s: float

    @classmethod
    def of(
        cls,
        entry: AlertContract,
        override: ContractOverride | None,
        compress: Any,
        settle_s: float = 0.0,
        notification_allowance: float = 0.0,
    ) -> Objectives:
        detect = override.detect_within if override and override.detect_within else None
        resolve = override.resolve_within if override and override.resolve_within else None
        detect_s = compress(detect or entry.detect_within)
        return cls(
            labels=dict(entry.labels),
            carries=list(entry.carries),
            receiver=entry.receiver,
            send_resolved=entry.send_resolved,
            detect_s=detect_s,
            resolve_s=compress(resolve or entry.resolve_within) + settle_s,
            notify_s=detect_s + compress(notification_allowance),
        )


@dataclass
class LoadedRule:
    """The rule as Prometheus loaded and runs it."""

    labels: dict[str, str]
    query: str
    for_s: float
    group_interval_s: float
    health: str
    last_error: str
    last_evaluation: str | None

    @classmethod
    def from_api(cls, rule: dict[str, Any], group: dict[str, Any]) -> LoadedRule:
        return cls(
            labels=dict(rule.get("labels") or {}),
            query=str(rule.get("query", "")),
            for_s=float(rule.get("duration") or 0),
            group_interval_s=float(group.get("interval") or 0),
            health=str(rule.get("health", "")),
            last_error=str(rule.get("lastError") or ""),
            last_evaluation=rule.get("lastEvaluation"),
        )


@dataclass
class Instance:
    """One label set of the alert in the `ALERTS` series, with its evaluation times."""

    labels: dict[str, str]
    pending: list[float] = field(default_factory=list)
    firing: list[float] = field(default_factory=list)


@dataclass
class AlertObservation:
    alert: str
    objectives: Objectives | None
    rule: LoadedRule | None
    scrape_interval_s: float
    evaluation_interval_s: float
    instances: list[Instance]
    polled: list[dict[str, Any]]
    held: list[dict[str, Any]]
    notifications: list[Notification]
    fault_start: float | None
    healed_at: float | None
    observed_until: float
    still_firing: bool
    resolve_after_heal: bool = True
    fire_before_heal: bool = True
    poll_errors: list[str] = field(default_factory=list)


def floor_s(obs: AlertObservation) -> float | None:
    """What the loaded rule needs once the symptom is there: a scrape to see it, an evaluation
    to go pending, and `for:` (a windowed signal then also needs its window to cross the
    threshold, which depends on how far above it the fault pushes)."""
    if obs.rule is None:
        return None
    return rule_floor(
        obs.scrape_interval_s,
        obs.rule.group_interval_s or obs.evaluation_interval_s,
        obs.rule.for_s,
    )


def rule_floor(scrape_s: float, evaluation_s: float, for_s: float) -> float:
    return scrape_s + evaluation_s + for_s


def _carrying(instance: Instance, names: list[str]) -> list[str]:
    return [n for n in names if not instance.labels.get(n)]


def _notified(
    notifications: list[Notification], status: str, labels: dict[str, str], after: float
) -> list[tuple[Notification, dict[str, str]]]:
    """Notifications with an alert of `status` whose labels include `labels`, at/after `after`."""
    found = []
    for n in notifications:
        if n.received_at + TOLERANCE_S < after:
            continue
        for alert in n.alerts:
            if alert.status == status and all(alert.labels.get(k) == v for k, v in labels.items()):
                found.append((n, alert.labels))
    return found


def judge_alert(obs: AlertObservation) -> tuple[Status, str, dict[str, Any]]:
    """Every layer, from the rule to the resolved notification; pure."""
    layers: dict[str, Any] = {}
    if obs.objectives is None:
        return "error", f"the alerting contract does not describe {obs.alert}", layers
    want = obs.objectives
    layers["objective_s"] = want.detect_s
    layers["notify_objective_s"] = want.notify_s
    layers["resolve_objective_s"] = want.resolve_s
    if obs.rule is None:
        return "fail", f"Prometheus has no alerting rule {obs.alert} loaded", layers
    floor = floor_s(obs)
    layers["floor_s"] = floor
    layers["slack_s"] = None if floor is None else round(want.detect_s - floor, 3)
    if obs.fault_start is None:
        return "error", "no fault was applied; nothing to measure from", layers
    failures: list[str] = []
    wrong = {
        k: (obs.rule.labels.get(k), v)
        for k, v in want.labels.items()
        if obs.rule.labels.get(k) != v
    }
    if wrong:
        failures.append(
            "labels differ from the contract: "
            + ", ".join(f"{k}={got!r} (contract: {v!r})" for k, (got, v) in wrong.items())
        )
    firing = [(t, i) for i in obs.instances for t in i.firing]
    if not firing:
        why = (
            f" (rule health {obs.rule.health}: {obs.rule.last_error})"
            if obs.rule.last_error
            else ""
        )
        return "fail", f"never fired{why}" + _also(failures), layers
    first, instance = min(firing, key=lambda x: x[0])
    layers["first_firing"] = first
    layers["instance_labels"] = instance.labels
    pendings = [t for i in obs.instances for t in i.pending]
    layers["first_pending"] = min(pendings) if pendings else None
    time_to_fire = first - obs.fault_start
    layers["time_to_fire_s"] = round(time_to_fire, 3)
    if time_to_fire < -TOLERANCE_S:
        return (
            "fail",
            f"already firing {-time_to_fire:.1f}s before the fault" + _also(failures),
            layers,
        )
    if time_to_fire > want.detect_s:
        failures.append(
            f"fired {time_to_fire:.1f}s after the fault, objective {want.detect_s:.1f}s"
            f" (the loaded rule's floor is {floor:.1f}s)"
        )
    if obs.fire_before_heal and obs.healed_at is not None and first > obs.healed_at + TOLERANCE_S:
        failures.append(f"fired {first - obs.healed_at:.1f}s after the fault was healed")
    missing = sorted({n for i in obs.instances if i.firing for n in _carrying(i, want.carries)})
    if missing:
        failures.append(f"firing instances lack label(s) {', '.join(missing)} (aggregated away?)")
    # Alertmanager
    layers["alertmanager"] = obs.held
    suppressed = [
        h for h in obs.held if h["state"] != "active" or h["inhibited_by"] or h["silenced_by"]
    ]
    if not obs.held:
        failures.append("Alertmanager never listed it")
    elif suppressed:
        by = sorted({x for h in suppressed for x in h["inhibited_by"] + h["silenced_by"]})
        states = sorted({h["state"] for h in suppressed})
        failures.append(
            f"Alertmanager held it {'/'.join(states)} while it fired"
            + (f" (inhibited or silenced by {', '.join(by)})" if by else "")
        )
    # the notification
    wanted = {"alertname": obs.alert, **{k: v for k, v in instance.labels.items()}}
    fired = _notified(obs.notifications, "firing", wanted, first)
    mine = [(n, labels) for n, labels in fired if n.receiver == want.receiver]
    layers["notifications"] = [n.as_dict() for n in obs.notifications]
    if mine:
        at = min(n.received_at for n, _ in mine)
        layers["time_to_notify_s"] = round(at - obs.fault_start, 3)
        late = at - obs.fault_start
        if late > want.notify_s + TOLERANCE_S:
            failures.append(f"notified {late:.1f}s after the fault, objective {want.notify_s:.1f}s")
    elif fired:
        elsewhere = sorted({n.receiver for n, _ in fired})
        failures.append(
            f"notification went to {', '.join(elsewhere)}, the contract says {want.receiver}"
        )
    else:
        failures.append(f"no firing notification reached {want.receiver}")
    # resolution
    if obs.resolve_after_heal:
        failures += _resolution(obs, want, wanted, layers)
    if failures:
        return "fail", "; ".join(failures), layers
    return (
        "pass",
        f"fired {time_to_fire:.1f}s after the fault (objective {want.detect_s:.1f}s, "
        f"floor {floor:.1f}s), notified {want.receiver}",
        layers,
    )


def _resolution(
    obs: AlertObservation, want: Objectives, labels: dict[str, str], layers: dict[str, Any]
) -> list[str]:
    if obs.healed_at is None:
        return ["the fault was never proven healed, so resolution cannot be judged"]
    failures = []
    last = max(t for i in obs.instances for t in i.firing)
    step = obs.rule.group_interval_s if obs.rule else obs.evaluation_interval_s
    if obs.still_firing or last >= obs.observed_until - 1.5 * max(step, 0.5):
        failures.append("still firing after heal")
    else:
        resolved = last + step
        layers["resolved_at"] = resolved
        layers["resolve_after_heal_s"] = round(max(0.0, resolved - obs.healed_at), 3)
    if want.send_resolved:
        # the notification of the final resolution: after the last firing sample (an alert on
        # a one-off event, an exhaustion, may resolve while the fault still holds, which is
        # within any objective)
        resolved_notes = _notified(obs.notifications, "resolved", labels, last)
        mine = [n for n, _ in resolved_notes if n.receiver == want.receiver]
        if not mine:
            failures.append(f"no resolved notification reached {want.receiver}")
        else:
            after = max(0.0, min(n.received_at for n in mine) - obs.healed_at)
            layers["resolved_notified_after_heal_s"] = round(after, 3)
            if after > want.resolve_s + TOLERANCE_S:
                failures.append(
                    f"resolved notification {after:.1f}s after heal, "
                    f"objective {want.resolve_s:.1f}s"
                )
    return failures


def _also(failures: list[str]) -> str:
    return "; " + "; ".join(failures) if failures else ""


async def alerts_series(
    prometheus: PrometheusAPI, alert: str, start: float, end: float
) -> list[Instance]:
    """Evaluation times at which each label set of the alert was pending or firing, as
    Prometheus stored them (raw samples: no lookback smears a state past its end)."""
    series = await prometheus.raw_samples(f'ALERTS{{alertname="{alert}"}}', start, end)
    instances: dict[tuple, Instance] = {}
    for s in series:
        labels = {k: v for k, v in s.labels.items() if k not in ("__name__", "alertstate")}
        key = tuple(sorted(labels.items()))
        instance = instances.setdefault(key, Instance(labels))
        times = [t for t, v in s.points if v == 1]
        if s.labels.get("alertstate") == "firing":
            instance.firing += times
        elif s.labels.get("alertstate") == "pending":
            instance.pending += times
    for instance in instances.values():
        instance.pending.sort()
        instance.firing.sort()
    return list(instances.values())


async def loaded_rule(prometheus: PrometheusAPI, alert: str) -> LoadedRule | None:
    found = await prometheus.alerting_rule(alert)
    return LoadedRule.from_api(*found) if found else None


class AlertFiredCheck(Check):
    """One expected alert, followed from Prometheus to the notification and back to resolved."""

    kind = "alert"

    def __init__(self, alert: str, expectation: AlertExpectation, poller: AlertPoller):
        super().__init__(f"alert {alert} fires")
        self.alert = alert
        self.expectation = expectation
        self.poller = poller

    def objectives(self, run: RunView) -> Objectives | None:
        entry = run.contract.get(self.alert)
        if entry is None:
            return None
        return Objectives.of(
            entry,
            self.expectation.contract.get(self.alert),
            run.target.profile.compress,
            run.plan.settle_s,
            run.contract.notification_allowance,
        )

    async def settle(self, run: RunView) -> None:
        """Wait until the alert is no longer active after heal, at most its resolve objective."""
        want = self.objectives(run)
        healed = run.healed_at()
        if not self.expectation.resolve_after_heal or want is None or healed is None:
            return
        deadline = healed + want.resolve_s + 2
        trace = self.poller.trace(self.alert)
        while time.time() < deadline:
            await self.poller.poll()
            if trace.state == "inactive" and (
                not want.send_resolved or await self._resolved_notified(run, want, healed)
            ):
                return
            await anyio.sleep(self.poller.interval)

    async def _resolved_notified(self, run: RunView, want: Objectives, healed: float) -> bool:
        if run.receiver is None:
            return True
        try:
            notes = await run.receiver.notifications(since=healed)
        except Exception:  # settle only waits; the verdict reports the error
            return False
        labels = {"alertname": self.alert}
        return any(n.receiver == want.receiver for n, _ in _notified(notes, "resolved", labels, 0))

    async def collect(self, run: RunView) -> AlertObservation:
        await self.poller.poll()  # the state right now, too
        start, now = run.started(), time.time()
        if run.receiver is None:
            raise ReceiverError(f"target {run.target.name} names no notification receiver")
        fault = run.fault_window()
        scrape, evaluation = await run.prometheus.intervals()
        trace = self.poller.trace(self.alert)
        return AlertObservation(
            alert=self.alert,
            objectives=self.objectives(run),
            rule=await loaded_rule(run.prometheus, self.alert),
            scrape_interval_s=scrape,
            evaluation_interval_s=evaluation,
            instances=await alerts_series(run.prometheus, self.alert, start, now),
            polled=trace.transitions,
            held=trace.held,
            notifications=[
                n
                for n in await run.receiver.notifications(since=start)
                if any(a.labels.get("alertname") == self.alert for a in n.alerts)
            ],
            fault_start=fault.start if fault else None,
            healed_at=run.healed_at(),
            observed_until=now,
            still_firing=trace.state == "firing",
            resolve_after_heal=self.expectation.resolve_after_heal,
            fire_before_heal=self.expectation.fire_before_heal,
            poll_errors=self.poller.errors[-5:],
        )

    def judge(self, observed: AlertObservation) -> CheckResult:
        status, summary, layers = judge_alert(observed)
        return result(self, status, summary, _evidence(observed, layers))


def _evidence(obs: AlertObservation, layers: dict[str, Any]) -> dict[str, Any]:
    return {
        "alert": obs.alert,
        "contract": obs.objectives.__dict__ if obs.objectives else None,
        "loaded_rule": obs.rule.__dict__ if obs.rule else None,
        "scrape_interval_s": obs.scrape_interval_s,
        "evaluation_interval_s": obs.evaluation_interval_s,
        "fault_start": obs.fault_start,
        "healed_at": obs.healed_at,
        "alerts_series": [i.__dict__ for i in obs.instances],
        "polled": obs.polled,
        "poll_errors": obs.poll_errors,
        **layers,
    }


@dataclass
class ForbiddenObservation:
    alert: str
    rule: LoadedRule | None
    instances: list[Instance]
    polled: list[dict[str, Any]]
    window: tuple[float, float]
    last_evaluation: float | None


def judge_forbidden(obs: ForbiddenObservation) -> tuple[Status, str]:
    """Never fired, and provably able to: loaded, healthy, evaluated during the window. Going
    pending pages nobody; it is reported as a near miss, not a failure."""
    firing = [t for i in obs.instances for t in i.firing]
    firing += [p["at"] for p in obs.polled if p["state"] == "firing"]
    if firing:
        return "fail", f"fired at {_clock(min(firing))}"
    if obs.rule is None:
        return "fail", f"Prometheus has no alerting rule {obs.alert} loaded: silence proves nothing"
    if obs.rule.health != "ok" or obs.rule.last_error:
        return (
            "fail",
            f"its rule is not healthy ({obs.rule.health or 'unknown'}: "
            f"{obs.rule.last_error or 'no evaluation yet'}): silence proves nothing",
        )
    if obs.last_evaluation is None or obs.last_evaluation < obs.window[0]:
        return "fail", "its rule was not evaluated during the window: silence proves nothing"
    pending = [t for i in obs.instances for t in i.pending]
    pending += [p["at"] for p in obs.polled if p["state"] == "pending"]
    if pending:
        return (
            "pass",
            f"never fired; rule healthy and evaluated (a near miss: pending at "
            f"{_clock(min(pending))}, {len(set(pending))} evaluation(s))",
        )
    return "pass", "never pending or firing; rule healthy and evaluated"


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


class ForbiddenAlertCheck(Check):
    """An alert that must not fire at any time during the run."""

    kind = "alert_forbidden"

    def __init__(self, alert: str, poller: AlertPoller):
        super().__init__(f"alert {alert} stays silent")
        self.alert = alert
        self.poller = poller

    async def collect(self, run: RunView) -> ForbiddenObservation:
        start, now = run.started(), time.time()
        rule = await loaded_rule(run.prometheus, self.alert)
        return ForbiddenObservation(
            alert=self.alert,
            rule=rule,
            instances=await alerts_series(run.prometheus, self.alert, start, now),
            polled=self.poller.trace(self.alert).transitions,
            window=(start, now),
            last_evaluation=_timestamp(rule.last_evaluation) if rule else None,
        )

    def judge(self, observed: ForbiddenObservation) -> CheckResult:
        status, summary = judge_forbidden(observed)
        return result(
            self,
            status,
            summary,
            {
                "alert": observed.alert,
                "window": list(observed.window),
                "loaded_rule": observed.rule.__dict__ if observed.rule else None,
                "alerts_series": [i.__dict__ for i in observed.instances],
                "polled": observed.polled[:20],
            },
        )


def _timestamp(text: str | None) -> float | None:
    """Prometheus's RFC 3339 `lastEvaluation` (nanoseconds, `Z`) as Unix seconds."""
    if not text or text.startswith("0001-"):
        return None
    head, _, rest = text.partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    zone = rest[len("".join(ch for ch in rest if ch.isdigit())) :] or "Z"
    parsed = datetime.fromisoformat(f"{head}.{fraction or '0'}{zone.replace('Z', '+00:00')}")
    return parsed.timestamp()


__all__ = [
    "AlertExpectation",
    "AlertFiredCheck",
    "ContractOverride",
    "ForbiddenAlertCheck",
    "judge_alert",
    "judge_forbidden",
]
