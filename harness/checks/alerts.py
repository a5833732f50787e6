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

The evidence keeps every observation typed (the `ALERTS` series, the loaded rule, the polled
transitions, Alertmanager's sightings, the notifications) with the scenario's contract override,
so the judges re-run offline against the recorded objectives or a revised contract. The readers
of Prometheus's alert data live beside its adapter (`harness.prometheus_alerts`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.checks.alert_poller import AlertPoller, Sighting, Transition
from harness.checks.base import (
    Check,
    CheckResult,
    CoverageFacts,
    JudgeContext,
    Judged,
    Raw,
    RunView,
    Setup,
)
from harness.config import Strict
from harness.durations import Duration
from harness.errors import ReceiverError
from harness.evidence.record import CheckEvidence, ScenarioResult, Status
from harness.prometheus_alerts import AlertInstance, LoadedRule, alerts_series, loaded_rule

if TYPE_CHECKING:
    from harness.contract import AlertContract
    from harness.scenario import Scenario

TOLERANCE_S = 0.5
"""Clock slack between a sample's evaluation timestamp and our own wall clock."""


class ContractOverride(Strict):
    """What a scenario may change of an alert's contract (e.g. a slower-building signal)."""

    detect_within: Duration | None = Field(None, gt=0)
    resolve_within: Duration | None = Field(None, gt=0)
    why: str = Field(min_length=1, description="why this scenario deviates from the contract")


class AlertExpectation(Strict):
    fire: list[str] = Field(default_factory=list)
    forbid: list[str] = Field(default_factory=list)
    resolve_after_heal: bool = True
    fire_before_heal: bool = Field(
        True, description="an expected alert must fire while the fault is still in effect"
    )
    settle_allowance: Duration = Field(
        0.0,
        ge=0,
        description="time the system under test needs after heal before the symptom stops "
        "(in-flight redeliveries, delayed ACKs); added to each alert's resolve objective",
    )
    contract: dict[str, ContractOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _disjoint(self) -> AlertExpectation:
        both = sorted(set(self.fire) & set(self.forbid))
        if both:
            raise ValueError(f"alert(s) both expected and forbidden: {', '.join(both)}")
        unknown = sorted(set(self.contract) - set(self.fire))
        if unknown:
            raise ValueError(f"contract overrides for alerts not expected to fire: {unknown}")
        return self


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objectives(_Record):
    """The contract entry on the target's clock (seconds), overrides applied."""

    labels: dict[str, str] = Field(default_factory=dict)
    carries: list[str] = Field(default_factory=list)
    receiver: str = ""
    send_resolved: bool = True
    detect_s: float
    resolve_s: float
    notify_s: float | None = None  # older evidence: none

    @classmethod
    def of(
        cls,
        entry: AlertContract,
        override: ContractOverride | None,
        compress: Callable[[float], float],
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


class NotifiedAlertRecord(_Record):
    labels: dict[str, str] = Field(default_factory=dict)
    status: str = ""
    starts_at: str | None = None
    ends_at: str | None = None


class NotificationRecord(_Record):
    """One notification the receiver recorded: when, through which receiver, which alerts."""

    received_at: float
    receiver: str = ""
    status: str = ""
    alerts: list[NotifiedAlertRecord] = Field(default_factory=list)


class AlertEvidence(CheckEvidence):
    """An expected alert, observed at every layer, with the judge's timings.

    Observations: the `ALERTS` series, the loaded rule, the intervals Prometheus runs at, the
    polled transitions, Alertmanager's sightings, the notifications, the fault's start and heal;
    the objectives on the run's clock (`contract`) with what they were computed from (the
    scenario's `override` and `settle_s`). The rest is what the judge derived.
    """

    alert: str = ""
    contract: Objectives | None = None
    override: ContractOverride | None = None
    settle_s: float = 0.0
    loaded_rule: LoadedRule | None = None
    scrape_interval_s: float | None = None
    evaluation_interval_s: float | None = None
    fault_start: float | None = None
    healed_at: float | None = None
    observed_until: float | None = None
    still_firing: bool | None = None
    resolve_after_heal: bool = True
    fire_before_heal: bool = True
    alerts_series: list[AlertInstance] = Field(default_factory=list)
    polled: list[Transition] = Field(default_factory=list)
    poll_errors: list[str] = Field(default_factory=list)
    alertmanager: list[Sighting] = Field(default_factory=list)
    notifications: list[NotificationRecord] = Field(default_factory=list)
    # judged
    objective_s: float | None = None
    notify_objective_s: float | None = None
    resolve_objective_s: float | None = None
    floor_s: float | None = None
    slack_s: float | None = None
    first_firing: float | None = None
    first_pending: float | None = None
    instance_labels: dict[str, str] | None = None
    time_to_fire_s: float | None = None
    time_to_notify_s: float | None = None
    resolved_at: float | None = None
    resolve_after_heal_s: float | None = None
    resolved_notified_after_heal_s: float | None = None


JUDGED = (
    "objective_s",
    "notify_objective_s",
    "resolve_objective_s",
    "floor_s",
    "slack_s",
    "first_firing",
    "first_pending",
    "instance_labels",
    "time_to_fire_s",
    "time_to_notify_s",
    "resolved_at",
    "resolve_after_heal_s",
    "resolved_notified_after_heal_s",
)
TIMINGS = (
    "objective_s",
    "floor_s",
    "slack_s",
    "time_to_fire_s",
    "notify_objective_s",
    "time_to_notify_s",
    "resolve_objective_s",
    "resolve_after_heal_s",
    "resolved_notified_after_heal_s",
)
"""The judged timings a report shows beside an alert's receipts, in this order."""


def floor_s(obs: AlertEvidence) -> float | None:
    """What the loaded rule needs once the symptom is there: a scrape to see it, an evaluation
    to go pending, and `for:` (a windowed signal then also needs its window to cross the
    threshold, which depends on how far above it the fault pushes)."""
    if obs.loaded_rule is None:
        return None
    return rule_floor(
        obs.scrape_interval_s or 0.0,
        obs.loaded_rule.group_interval_s or obs.evaluation_interval_s or 0.0,
        obs.loaded_rule.for_s,
    )


def rule_floor(scrape_s: float, evaluation_s: float, for_s: float) -> float:
    return scrape_s + evaluation_s + for_s


def _carrying(instance: AlertInstance, names: list[str]) -> list[str]:
    return [n for n in names if not instance.labels.get(n)]


def _notified(
    notifications: list[Any], status: str, labels: dict[str, str], after: float
) -> list[tuple[Any, dict[str, str]]]:
    """Notifications (records or the receiver's own) with an alert of `status` whose labels
    include `labels`, at/after `after`."""
    found = []
    for n in notifications:
        if n.received_at + TOLERANCE_S < after:
            continue
        for alert in n.alerts:
            if alert.status == status and all(alert.labels.get(k) == v for k, v in labels.items()):
                found.append((n, alert.labels))
    return found


def objectives_for(obs: AlertEvidence, ctx: JudgeContext | None) -> Objectives | None:
    """The objectives to judge by: the contract's (on the run's clock, with the scenario's
    override), or those the evidence recorded when the judge is given no contract."""
    if ctx is None or ctx.contract is None:
        return obs.contract
    entry = ctx.contract.get(obs.alert)
    if entry is None:
        return None
    return Objectives.of(
        entry, obs.override, ctx.compress, obs.settle_s, ctx.contract.notification_allowance
    )


def judge_alert(
    obs: AlertEvidence, ctx: JudgeContext | None = None
) -> tuple[Status, str, AlertEvidence]:
    """Every layer, from the rule to the resolved notification; pure."""
    want = objectives_for(obs, ctx)
    layers: dict[str, Any] = dict.fromkeys(JUDGED)
    layers["contract"] = want
    status, summary = _judge_alert(obs, want, layers)
    return status, summary, obs.model_copy(update=layers)


def _judge_alert(
    obs: AlertEvidence, want: Objectives | None, layers: dict[str, Any]
) -> tuple[Status, str]:
    if want is None:
        return "error", f"the alerting contract does not describe {obs.alert}"
    layers["objective_s"] = want.detect_s
    notify_s = want.notify_s if want.notify_s is not None else want.detect_s
    layers["notify_objective_s"] = notify_s
    layers["resolve_objective_s"] = want.resolve_s
    rule = obs.loaded_rule
    if rule is None:
        return "fail", f"Prometheus has no alerting rule {obs.alert} loaded"
    floor = floor_s(obs) or 0.0
    layers["floor_s"] = floor
    layers["slack_s"] = round(want.detect_s - floor, 3)
    if obs.fault_start is None:
        return "error", "no fault was applied; nothing to measure from"
    failures: list[str] = []
    wrong = {k: (rule.labels.get(k), v) for k, v in want.labels.items() if rule.labels.get(k) != v}
    if wrong:
        failures.append(
            "labels differ from the contract: "
            + ", ".join(f"{k}={got!r} (contract: {v!r})" for k, (got, v) in wrong.items())
        )
    firing = [(t, i) for i in obs.alerts_series for t in i.firing]
    if not firing:
        why = f" (rule health {rule.health}: {rule.last_error})" if rule.last_error else ""
        return "fail", f"never fired{why}" + _also(failures)
    first, _ = min(firing, key=lambda x: x[0])
    layers["first_firing"] = first
    # The notification is judged for the instance that fired longest: the fault's own. A
    # sibling that fired for one evaluation (a healthy node's /healthz not ok for a second
    # while its peer is paused) may resolve before Alertmanager's first flush and is then
    # rightly never notified as firing. Detection still counts from the first instance.
    instance = max(
        (i for i in obs.alerts_series if i.firing), key=lambda i: (len(i.firing), -i.firing[0])
    )
    layers["instance_labels"] = instance.labels
    pendings = [t for i in obs.alerts_series for t in i.pending]
    layers["first_pending"] = min(pendings) if pendings else None
    time_to_fire = first - obs.fault_start
    layers["time_to_fire_s"] = round(time_to_fire, 3)
    if time_to_fire < -TOLERANCE_S:
        return "fail", f"already firing {-time_to_fire:.1f}s before the fault" + _also(failures)
    if time_to_fire > want.detect_s:
        failures.append(
            f"fired {time_to_fire:.1f}s after the fault, objective {want.detect_s:.1f}s"
            f" (the loaded rule's floor is {floor:.1f}s)"
        )
    if obs.fire_before_heal and obs.healed_at is not None and first > obs.healed_at + TOLERANCE_S:
        failures.append(f"fired {first - obs.healed_at:.1f}s after the fault was healed")
    missing = sorted({n for i in obs.alerts_series if i.firing for n in _carrying(i, want.carries)})
    if missing:
        failures.append(f"firing instances lack label(s) {', '.join(missing)} (aggregated away?)")
    # Alertmanager
    suppressed = [h for h in obs.alertmanager if h.suppressed]
    if not obs.alertmanager:
        failures.append("Alertmanager never listed it")
    elif suppressed:
        by = sorted({x for h in suppressed for x in h.inhibited_by + h.silenced_by})
        states = sorted({h.state for h in suppressed})
        failures.append(
            f"Alertmanager held it {'/'.join(states)} while it fired"
            + (f" (inhibited or silenced by {', '.join(by)})" if by else "")
        )
    # the notification
    wanted = {"alertname": obs.alert, **instance.labels}
    fired = _notified(obs.notifications, "firing", wanted, instance.firing[0])
    mine = [(n, labels) for n, labels in fired if n.receiver == want.receiver]
    if mine:
        at = min(n.received_at for n, _ in mine)
        layers["time_to_notify_s"] = round(at - obs.fault_start, 3)
        late = at - obs.fault_start
        if late > notify_s + TOLERANCE_S:
            failures.append(f"notified {late:.1f}s after the fault, objective {notify_s:.1f}s")
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
        return "fail", "; ".join(failures)
    return (
        "pass",
        f"fired {time_to_fire:.1f}s after the fault (objective {want.detect_s:.1f}s, "
        f"floor {floor:.1f}s), notified {want.receiver}",
    )


def _resolution(
    obs: AlertEvidence, want: Objectives, labels: dict[str, str], layers: dict[str, Any]
) -> list[str]:
    if obs.healed_at is None:
        return ["the fault was never proven healed, so resolution cannot be judged"]
    failures = []
    last = max(t for i in obs.alerts_series for t in i.firing)
    rule = obs.loaded_rule
    step = rule.group_interval_s if rule else (obs.evaluation_interval_s or 0.0)
    until = obs.observed_until if obs.observed_until is not None else float("inf")
    if obs.still_firing or last >= until - 1.5 * max(step, 0.5):
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


def _fired(evidence: AlertEvidence | ForbiddenEvidence) -> set[str]:
    return {evidence.alert} if any(i.firing for i in evidence.alerts_series) else set()


class _AlertCheck(Check):
    """What expected and forbidden alerts share: the alerts column, the state strip, and the
    rule with what it produced as the raw data of a failure."""

    column = "alerts"
    figure_group = "alerts"

    @classmethod
    def raw(cls, evidence: AlertEvidence | ForbiddenEvidence) -> list[Raw]:
        consulted = evidence.model_dump(
            mode="json",
            include={"alerts_series", "alertmanager", "notifications", "polled", "poll_errors"},
        )
        rule = evidence.loaded_rule
        label = "the loaded rule and what it produced"
        return [Raw(label, rule.query if rule else None, consulted)]

    @classmethod
    def figure(cls, check: CheckResult, result: ScenarioResult) -> Any:
        from harness.report.figures import alert_strip

        return alert_strip(check, result)


class AlertFiredCheck(_AlertCheck):
    """One expected alert, followed from Prometheus to the notification and back to resolved."""

    kind = "alert"
    evidence_model = AlertEvidence
    expects = ("alerts", AlertExpectation, Field(default_factory=AlertExpectation))
    """Expected and forbidden alerts alike (the forbidden kind reads the same key)."""

    def __init__(self, alert: str, expectation: AlertExpectation, poller: AlertPoller):
        super().__init__(f"alert {alert} fires")
        self.alert = alert
        self.expectation = expectation
        self.poller = poller

    @classmethod
    def build(cls, scenario: Scenario, setup: Setup) -> list[Check]:
        alerts = scenario.expect.alerts
        return [cls(a, alerts, setup.poller) for a in alerts.fire]

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
            # the judge wants the notification of the FINAL resolution: one sent after the
            # last instance stopped, not an earlier instance's (alerts with several series)
            if trace.state == "inactive" and (
                not want.send_resolved
                or await self._resolved_notified(run, want, self._quiet_since(trace, healed))
            ):
                return
            await anyio.sleep(self.poller.interval)

    def _quiet_since(self, trace: Any, healed: float) -> float:
        """When polling last saw the alert go inactive (less one poll), or `healed`."""
        last = next((t.at for t in reversed(trace.transitions) if t.state == "inactive"), None)
        return healed if last is None else max(healed, last - self.poller.interval)

    async def _resolved_notified(self, run: RunView, want: Objectives, healed: float) -> bool:
        if run.receiver is None:
            return True
        try:
            notes = await run.receiver.notifications(since=healed)
        except Exception:  # settle only waits; the verdict reports the error
            return False
        labels = {"alertname": self.alert}
        return any(n.receiver == want.receiver for n, _ in _notified(notes, "resolved", labels, 0))

    async def collect(self, run: RunView) -> AlertEvidence:
        await self.poller.poll()  # the state right now, too
        start, now = run.started(), time.time()
        if run.receiver is None:
            raise ReceiverError(f"target {run.target.name} names no notification receiver")
        fault = run.fault_window()
        scrape, evaluation = await run.prometheus.intervals()
        trace = self.poller.trace(self.alert)
        notifications = [
            NotificationRecord.model_validate(n.as_dict())
            for n in await run.receiver.notifications(since=start)
            if any(a.labels.get("alertname") == self.alert for a in n.alerts)
        ]
        return AlertEvidence(
            alert=self.alert,
            contract=self.objectives(run),
            override=self.expectation.contract.get(self.alert),
            settle_s=run.plan.settle_s,
            loaded_rule=await loaded_rule(run.prometheus, self.alert),
            scrape_interval_s=scrape,
            evaluation_interval_s=evaluation,
            alerts_series=await alerts_series(run.prometheus, self.alert, start, now),
            polled=list(trace.transitions),
            alertmanager=list(trace.held),
            notifications=notifications,
            fault_start=fault.start if fault else None,
            healed_at=run.healed_at(),
            observed_until=now,
            still_firing=trace.state == "firing",
            resolve_after_heal=self.expectation.resolve_after_heal,
            fire_before_heal=self.expectation.fire_before_heal,
            poll_errors=self.poller.errors[-5:],
        )

    @classmethod
    def judge(cls, evidence: AlertEvidence, ctx: JudgeContext) -> Judged:
        status, summary, evidence = judge_alert(evidence, ctx)
        return Judged(status, summary, evidence)

    @classmethod
    def facts(cls, check: CheckResult) -> CoverageFacts:
        evidence: AlertEvidence = check.evidence  # type: ignore[assignment]
        proven = {evidence.alert} if check.status == "pass" else set()
        return CoverageFacts(alerts_fired=_fired(evidence), alerts_proven=proven)


class ForbiddenEvidence(CheckEvidence):
    """A forbidden alert: its `ALERTS` series and polled transitions over the window, and the
    rule as loaded (its health and last evaluation prove it could have fired)."""

    alert: str = ""
    window: tuple[float, float] | None = None
    loaded_rule: LoadedRule | None = None
    alerts_series: list[AlertInstance] = Field(default_factory=list)
    polled: list[Transition] = Field(default_factory=list)
    poll_errors: list[str] = Field(default_factory=list)


def judge_forbidden(obs: ForbiddenEvidence) -> tuple[Status, str]:
    """Never fired, and provably able to: loaded, healthy, evaluated during the window. Going
    pending pages nobody; it is reported as a near miss, not a failure."""
    firing = [t for i in obs.alerts_series for t in i.firing]
    firing += [p.at for p in obs.polled if p.state == "firing"]
    if firing:
        return "fail", f"fired at {_clock(min(firing))}"
    rule = obs.loaded_rule
    if rule is None:
        return "fail", f"Prometheus has no alerting rule {obs.alert} loaded: silence proves nothing"
    if rule.health != "ok" or rule.last_error:
        return (
            "fail",
            f"its rule is not healthy ({rule.health or 'unknown'}: "
            f"{rule.last_error or 'no evaluation yet'}): silence proves nothing",
        )
    last = rule.last_evaluated_at
    if last is None or obs.window is None or last < obs.window[0]:
        return "fail", "its rule was not evaluated during the window: silence proves nothing"
    pending = [t for i in obs.alerts_series for t in i.pending]
    pending += [p.at for p in obs.polled if p.state == "pending"]
    if pending:
        return (
            "pass",
            f"never fired; rule healthy and evaluated (a near miss: pending at "
            f"{_clock(min(pending))}, {len(set(pending))} evaluation(s))",
        )
    return "pass", "never pending or firing; rule healthy and evaluated"


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


class ForbiddenAlertCheck(_AlertCheck):
    """An alert that must not fire at any time during the run."""

    kind = "alert_forbidden"
    evidence_model = ForbiddenEvidence

    def __init__(self, alert: str, poller: AlertPoller):
        super().__init__(f"alert {alert} stays silent")
        self.alert = alert
        self.poller = poller

    @classmethod
    def build(cls, scenario: Scenario, setup: Setup) -> list[Check]:
        return [cls(a, setup.poller) for a in scenario.expect.alerts.forbid]

    async def collect(self, run: RunView) -> ForbiddenEvidence:
        start, now = run.started(), time.time()
        return ForbiddenEvidence(
            alert=self.alert,
            window=(start, now),
            loaded_rule=await loaded_rule(run.prometheus, self.alert),
            alerts_series=await alerts_series(run.prometheus, self.alert, start, now),
            polled=list(self.poller.trace(self.alert).transitions),
            poll_errors=self.poller.errors[-5:],
        )

    @classmethod
    def judge(cls, evidence: ForbiddenEvidence, ctx: JudgeContext) -> Judged:
        status, summary = judge_forbidden(evidence)
        return Judged(status, summary, evidence)

    @classmethod
    def facts(cls, check: CheckResult) -> CoverageFacts:
        evidence: ForbiddenEvidence = check.evidence  # type: ignore[assignment]
        return CoverageFacts(alerts_fired=_fired(evidence), alerts_forbidden={evidence.alert})


__all__ = [
    "AlertEvidence",
    "AlertExpectation",
    "AlertFiredCheck",
    "ContractOverride",
    "ForbiddenAlertCheck",
    "ForbiddenEvidence",
    "judge_alert",
    "judge_forbidden",
]
