"""The phase machine of `ScenarioRun` against the fakes of `harness.testing` (no component
runs): a clean run heals and passes; an error, a cancel and a phase timeout each still heal
every fault applied, empty the journal and say why in the verdict."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from harness.config import Profile, Target
from harness.contract import load_contract
from harness.evidence.record import Phase, ScenarioResult
from harness.faults.journal import Journal
from harness.orchestrator import Hooks, Orchestrator, ScenarioRun
from harness.plan import plan_for
from harness.scenario import Scenario
from harness.testing import FakeTarget, FakeWorkload

PROXY = "router_nats"
STUCK = "stuck_proxy"


def toxic(proxy: str = PROXY, duration: str = "300ms") -> dict[str, Any]:
    return {
        "kind": "toxic",
        "proxy": proxy,
        "type": "latency",
        "attributes": {"latency": 100},
        "start": "0s",
        "duration": duration,
    }


def scenario(*faults: dict[str, Any]) -> Scenario:
    return Scenario.model_validate(
        {
            "id": "S1",
            "title": "unit: the phase machine on fakes",
            "faults": list(faults) or [toxic()],
            "timeouts": {"baseline": "200ms"},
        }
    )


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "targets"))
    return Target(
        name="unit",
        nats_url="nats://127.0.0.1:1",
        toxiproxy_url="http://127.0.0.1:1",
        prometheus_url="http://127.0.0.1:2",
        alertmanager_url="http://127.0.0.1:3",
        proxies={PROXY: {}, STUCK: {}},
        profile=Profile(name="unit", time_compression=1.0),
    )


@dataclasses.dataclass
class Harnessed:
    fakes: FakeTarget
    orchestrator: Orchestrator
    phases: list[Phase]
    results: list[ScenarioResult]

    async def run(self, s: Scenario, adjust: Callable[[ScenarioRun], None] | None = None) -> Any:
        async with self.orchestrator.session() as ctx:
            run = ScenarioRun(self.orchestrator, s, ctx)
            if adjust is not None:
                adjust(run)
            await run.run()
            return run


def harnessed(target: Target, workload: Callable[[], FakeWorkload | None]) -> Harnessed:
    fakes = FakeTarget([PROXY, STUCK])
    phases: list[Phase] = []
    results: list[ScenarioResult] = []
    orchestrator = Orchestrator(
        target,
        load_contract(),
        "unit-run",
        stack=fakes.stack,
        adapters=fakes.adapters(),
        workload=lambda s, t: workload(),
        hooks=Hooks(on_phase=lambda _, p: phases.append(p), on_result=results.append),
    )
    return Harnessed(fakes, orchestrator, phases, results)


def assert_everything_healed(h: Harnessed, result: ScenarioResult) -> None:
    assert result.faults, "the scenario has faults"
    for record in result.faults:
        assert record.heal is not None and record.heal.healed, record
    assert h.fakes.toxiproxy.toxic_names() == {}, "a toxic is still on a proxy"
    assert Journal.for_target(h.orchestrator.target).entries() == []
    assert all(span.end is not None for span in result.phases), result.phases


def test_a_clean_run_goes_through_every_phase_heals_and_passes(target: Target) -> None:
    h = harnessed(target, FakeWorkload)
    run = anyio.run(h.run, scenario())
    result = run.result
    assert result.verdict == "passed", result.reason
    assert [s.phase for s in result.phases] == list(Phase)
    assert all(s.status == "ok" for s in result.phases), result.phases
    assert h.phases == list(Phase), "the phase hook hears every phase once"
    assert h.results == [result], "the result hook hears the scenario once"
    assert result.workload is not None and result.workload.acked == 10
    assert h.fakes.stack.resets == 1, "a local stack's alerting is reset in preflight"
    assert f"add_toxic {PROXY} harness_unit-run-S1-f0" in h.fakes.toxiproxy.calls
    assert_everything_healed(h, result)


def test_the_result_keeps_its_plan_and_preflight_typed(target: Target) -> None:
    h = harnessed(target, FakeWorkload)
    s = scenario()
    result = anyio.run(h.run, s).result
    assert result.plan == plan_for(s, target.profile)
    preflight = result.preflight
    assert preflight is not None
    assert [(p.name, p.ok) for p in preflight.probes] == [
        ("nats", True), ("toxiproxy", True), ("prometheus", True), ("alertmanager", True)
    ]  # fmt: skip
    assert preflight.toxiproxy is not None
    assert preflight.toxiproxy.toxics == {PROXY: [], STUCK: []} and not preflight.toxiproxy.disabled
    assert preflight.capabilities == "every fault is possible on this target"
    assert preflight.alerting_reset_s == 0.0, "the stack's alerting reset is timed"
    assert preflight.waited_for_alerts_s is None, "the scenario names no alert"
    doc = result.model_dump(mode="json")
    assert "waited_for_alerts_s" not in doc["preflight"], "a figure not taken is left out"
    assert doc["plan"]["faults"] == [{"start_s": 0.0, "duration_s": 0.3}]
    back = ScenarioResult.model_validate(doc)
    assert back.plan == result.plan and back.preflight == preflight


def test_an_error_mid_fault_still_heals_and_is_the_verdict(target: Target) -> None:
    h = harnessed(target, lambda: FakeWorkload(fail_after=0.6))
    run = anyio.run(h.run, scenario(toxic(duration="5s")))
    result = run.result
    assert result.verdict == "error"
    assert "workload crashed" in result.reason
    assert result.faults[0].applied_at is not None, "the fault was in effect when it crashed"
    assert_everything_healed(h, result)
    assert h.results == [result]


def test_a_cancel_mid_fault_still_heals_and_says_interrupted(target: Target) -> None:
    h = harnessed(target, FakeWorkload)
    runs: list[ScenarioRun] = []

    async def cancelled() -> None:
        with anyio.move_on_after(0.8):
            await h.run(scenario(toxic(duration="5s")), runs.append)

    anyio.run(cancelled)
    (run,) = runs
    result = run.result
    assert result.verdict == "interrupted", result.reason
    assert result.faults[0].applied_at is not None
    assert any(s.status == "interrupted" for s in result.phases), result.phases
    assert_everything_healed(h, result)


def test_a_phase_timeout_heals_what_was_applied_and_names_the_phase(target: Target) -> None:
    h = harnessed(target, FakeWorkload)
    h.fakes.toxiproxy.hang_on.add(STUCK)  # the second fault's apply never returns

    def short_inject(run: ScenarioRun) -> None:
        run.plan = run.plan.model_copy(update={"inject_s": 0.5})

    run = anyio.run(h.run, scenario(toxic(), toxic(STUCK)), short_inject)
    result = run.result
    assert result.verdict == "error"
    assert "phase inject did not finish within 0.5s" in result.reason
    inject = result.span(Phase.INJECT)
    assert inject is not None and inject.status == "timeout"
    assert result.faults[0].applied_at is not None and result.faults[1].applied_at is None
    assert_everything_healed(h, result)


def test_a_stack_that_cannot_reset_fails_preflight_before_any_fault(target: Target) -> None:
    from harness.stack.stack import StackError

    h = harnessed(target, FakeWorkload)
    h.fakes.stack.reset_error = StackError("alertmanager did not come back")
    result = anyio.run(h.run, scenario()).result
    assert result.verdict == "error"
    assert "could not reset the alerting state: alertmanager did not come back" in result.reason
    assert [s.phase for s in result.phases] == [Phase.PREFLIGHT, Phase.VERDICT]
    assert h.fakes.toxiproxy.calls == [], "nothing was injected"
