"""Limits on reach: what each token may do, judged before anything changes.

A token's role says which kinds of call it may make; its `policy` (in the tokens file) narrows
what an operator may touch: targets, scenarios or fault kinds, whether it may schedule, how many
runs it may have in progress, the guards a run on a target must carry, and when it may start
ad-hoc runs. A refusal is `Denied`: the API answers 403 naming the rule, changes nothing, and
audits it. Pure functions of the request and the policy (no I/O), unit-tested as such.

Roles:
- `read`: reads (runs, history, schedules, evidence, metrics, the lever's state);
- `safety`: reads, the emergency stop and engaging the safety lever — nothing that injects;
- `operator`: reads, runs, cancel, emergency stop, its own schedules — within its policy;
- `admin`: everything, including releasing the lever, deleting or replacing anyone's
  schedules, reading the audit log and the tokens and their policies.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from harness.config import Strict
from harness.errors import HarnessError
from harness.scenario import Scenario
from harness.service.schedules import GuardSpec, StartWindow, ZoneName

Role = Literal["admin", "operator", "safety", "read"]
ROLES: tuple[str, ...] = ("admin", "operator", "safety", "read")
MUTATING_ROLES = ("admin", "operator")
"""Roles that may inject: start runs and schedules."""
STOPPING_ROLES = ("admin", "operator", "safety")
"""Roles that may stop: the emergency stop."""
LEVER_ROLES = ("admin", "safety")
"""Roles that may engage the safety lever (only an admin releases it)."""


class Denied(HarnessError):
    """A call the caller's role or policy does not allow; `rule` names what refused it."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule

    def detail(self) -> dict[str, str]:
        return {"rule": self.rule, "message": str(self)}


class Policy(Strict):
    """What an operator token may reach; every field left out is unrestricted."""

    targets: list[str] | None = Field(
        None, max_length=200, description="target names it may touch (`local`: the local stack)"
    )
    scenarios: list[str] | None = Field(
        None, max_length=500, description="scenario ids or aliases, shell globs allowed (S*)"
    )
    fault_kinds: list[str] | None = Field(
        None, max_length=20, description="fault kinds its scenarios may use (toxic, process …)"
    )
    may_schedule: bool = Field(True, description="may create, replace and delete schedules")
    max_concurrent_runs: int | None = Field(None, ge=1, le=100)
    required_guards: dict[str, list[GuardSpec]] = Field(
        default_factory=dict,
        description="per target name (`*`: every target), guards a run must carry",
    )
    windows: list[StartWindow] = Field(
        default_factory=list, max_length=14, description="when ad-hoc runs may start"
    )
    timezone: ZoneName = "UTC"


OPEN = Policy()


@dataclass(frozen=True)
class RunAsk:
    """What a run request would do, as policy judges it."""

    scenarios: list[Scenario]
    targets: list[str]
    guards: list[GuardSpec]
    in_progress: int
    """runs of this token queued or running now"""
    scheduled: bool = False


def _guard_key(guard: GuardSpec) -> tuple[str, str]:
    return (
        ("alert", guard.alert)
        if guard.alert
        else ("promql", " ".join((guard.promql or "").split()))
    )


def _scenario_allowed(scenario: Scenario, patterns: list[str]) -> bool:
    names = [scenario.id, scenario.base_id, *scenario.aliases]
    return any(fnmatch.fnmatchcase(n, p) for n in names for p in patterns)


def check_run(who: str, policy: Policy, ask: RunAsk, now: datetime | None = None) -> None:
    """Denied with the first rule the run breaks; None when it may start."""
    prefix = f"policy of token {who!r}"
    if policy.targets is not None:
        outside = [t for t in ask.targets if t not in policy.targets]
        if outside:
            raise Denied("targets", f"{prefix}: may not touch target {outside[0]!r} "
                         f"(allowed: {', '.join(policy.targets) or 'none'})")  # fmt: skip
    if policy.scenarios is not None:
        outside = [s.id for s in ask.scenarios if not _scenario_allowed(s, policy.scenarios)]
        if outside:
            raise Denied("scenarios", f"{prefix}: may not run {', '.join(outside[:10])} "
                         f"(allowed: {', '.join(policy.scenarios) or 'none'})")  # fmt: skip
    if policy.fault_kinds is not None:
        for scenario in ask.scenarios:
            kinds = sorted({f.kind for f in scenario.faults} - set(policy.fault_kinds))
            if kinds:
                allowed = ", ".join(policy.fault_kinds)
                raise Denied(
                    "fault_kinds",
                    f"{prefix}: {scenario.id} uses fault kind {kinds[0]!r} (allowed: {allowed})",
                )
    carried = {_guard_key(g) for g in ask.guards}
    for target in ask.targets:
        for required in [
            *policy.required_guards.get("*", []),
            *policy.required_guards.get(target, []),
        ]:
            if _guard_key(required) not in carried:
                what = f"alert {required.alert}" if required.alert else f"promql {required.promql}"
                raise Denied("required_guards", f"{prefix}: a run on {target!r} must carry the "
                             f"guard {required.name!r} ({what})")  # fmt: skip
    if policy.max_concurrent_runs is not None and ask.in_progress >= policy.max_concurrent_runs:
        raise Denied("max_concurrent_runs", f"{prefix}: {ask.in_progress} run(s) in progress, "
                     f"at most {policy.max_concurrent_runs}")  # fmt: skip
    if policy.windows and not ask.scheduled:
        local = (now or datetime.now(UTC)).astimezone(ZoneInfo(policy.timezone))
        naive = local.replace(tzinfo=None)
        if not any(w.admits(naive, timedelta(0)) for w in policy.windows):
            spans = "; ".join(f"{','.join(w.days)} {w.start:%H:%M}-{w.end:%H:%M}"
                              for w in policy.windows)  # fmt: skip
            raise Denied("windows", f"{prefix}: ad-hoc runs only {spans} ({policy.timezone}); "
                         f"it is {naive:%a %H:%M}")  # fmt: skip


def check_schedule(who: str, policy: Policy, ask: RunAsk) -> None:
    """A schedule is a run on a timer: the same limits (not the ad-hoc windows), and the
    permission to schedule at all."""
    if not policy.may_schedule:
        raise Denied("may_schedule", f"policy of token {who!r}: may not schedule runs")
    check_run(who, policy, RunAsk(ask.scenarios, ask.targets, ask.guards, 0, scheduled=True))


def capabilities(role: str, policy: Policy) -> list[str]:
    """What a token may do, from its role and its policy's `may_schedule`: what the tokens
    API shows as its effective permissions."""
    may = ["read"]
    if role in STOPPING_ROLES:
        may.append("stop_all")
    if role in LEVER_ROLES:
        may.append("engage_lever")
    if role in MUTATING_ROLES:
        may += ["run", "cancel"]
        if policy.may_schedule:
            may.append("schedule")
    if role == "admin":
        may += ["release_lever", "edit_any_schedule", "read_audit", "manage_tokens"]
    return may


def require_role(who: str, role: str, allowed: tuple[str, ...], action: str) -> None:
    if role not in allowed:
        raise Denied("role", f"token {who!r} (role {role}) may not {action}; "
                     f"needs role {' or '.join(allowed)}")  # fmt: skip
