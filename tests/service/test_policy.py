"""Limits on reach, judged as pure functions: targets, scenarios, fault kinds, scheduling,
concurrency, required guards, ad-hoc windows; each refusal names its rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.scenario import load_scenarios
from harness.service.policy import Denied, Policy, RunAsk, check_run, check_schedule
from harness.service.schedules import GuardSpec
from tests.service.fakes import service_files

SLO = GuardSpec(name="slo", alert="CustomerSLOBurn")


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> list:
    base: Path = tmp_path_factory.mktemp("policy")
    service_files(base)
    return [s for s, _ in load_scenarios(base / "scenarios").values()]


def ask(scenarios: list, targets: tuple[str, ...] = ("staging-a",), guards=(), running=0) -> RunAsk:
    return RunAsk(scenarios, list(targets), list(guards), running)


def refused(policy: Policy, request: RunAsk, now: datetime | None = None) -> str:
    with pytest.raises(Denied) as caught:
        check_run("team-a", policy, request, now)
    assert "team-a" in str(caught.value)
    return caught.value.rule


def test_an_open_policy_allows_everything(scenarios: list) -> None:
    check_run("team-a", Policy(), ask(scenarios, ("staging-a", "staging-b"), running=50))


def test_each_rule_refuses_by_name(scenarios: list) -> None:
    assert refused(Policy(targets=["staging-b"]), ask(scenarios)) == "targets"
    assert refused(Policy(scenarios=["QUICK-002"]), ask(scenarios)) == "scenarios"
    check_run("team-a", Policy(scenarios=["QUICK-*"]), ask(scenarios))
    assert refused(Policy(fault_kinds=["process"]), ask(scenarios)) == "fault_kinds"
    check_run("team-a", Policy(fault_kinds=["toxic"]), ask(scenarios))
    assert (
        refused(Policy(max_concurrent_runs=1), ask(scenarios, running=1)) == "max_concurrent_runs"
    )
    required = Policy(required_guards={"staging-a": [SLO]})
    assert refused(required, ask(scenarios)) == "required_guards"
    # the guard is matched by its condition, not by its (free) name
    renamed = GuardSpec(name="whatever", alert="CustomerSLOBurn")
    check_run("team-a", required, ask(scenarios, guards=[renamed]))
    fake = GuardSpec(name="slo", promql="vector(0)")
    assert refused(required, ask(scenarios, guards=[fake])) == "required_guards"
    everywhere = Policy(required_guards={"*": [SLO]})
    assert refused(everywhere, ask(scenarios, ("staging-b",))) == "required_guards"


def test_ad_hoc_windows_and_schedules(scenarios: list) -> None:
    office = Policy(
        windows=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
        timezone="Europe/Berlin",
    )
    tuesday_10 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    saturday = datetime(2026, 3, 7, 9, 0, tzinfo=UTC)
    check_run("team-a", office, ask(scenarios), tuesday_10)
    assert refused(office, ask(scenarios), saturday) == "windows"
    check_schedule("team-a", office, ask(scenarios))  # windows are for ad-hoc runs
    with pytest.raises(Denied) as caught:
        check_schedule("team-a", Policy(may_schedule=False), ask(scenarios))
    assert caught.value.rule == "may_schedule"
