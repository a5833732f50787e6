"""A slot a scenario left unfit is rebuilt before its next scenario (unit, on fakes): the pure
decision (observations → nothing, rebuild, report, and why), the keeper that observes, waits
for a transient problem to clear, rebuilds and records it, the typed evidence, and the scenarios
no slot could take after a failed rebuild."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog

from harness.config import Profile, Target
from harness.errors import HarnessError
from harness.evidence.record import (
    FaultRecord,
    HealOutcome,
    RunRecord,
    ScenarioResult,
    SlotCheck,
)
from harness.faults.base import NEEDS_REBUILD, FaultContext, FaultDriver, FaultStillPresent
from harness.faults.journal import Journal
from harness.faults.lifecycle import FaultRunner
from harness.probes import ProbeResult
from harness.runner import not_run
from harness.scenario import Scenario
from harness.slot_health import SlotDecision, SlotKeeper, SlotObservations, decide
from harness.specs.faults import FaultBase
from harness.testing import FakeTarget


@pytest.fixture(autouse=True)
def _logs_to_the_current_stderr() -> None:
    """The keeper logs warnings; a test before this one may have pointed structlog at a
    captured stream since closed (`run_scenarios` configures logging)."""
    structlog.reset_defaults()


OK = [ProbeResult("nats", "nats://x", True, "ok"), ProbeResult("router[0]", "http://r", True, "ok")]
ROUTER_DOWN = [
    ProbeResult("nats", "nats://x", True, "ok"),
    ProbeResult("router[0]", "http://r", False, "GET http://r/readyz: HTTP 503"),
]


def heal(key: str = "k", *, healed: bool = True, needs_rebuild: bool = False) -> HealOutcome:
    return HealOutcome(
        key=key,
        kind="storage_damage",
        healed=healed,
        method="remove" if healed else "failed",
        seconds=1.0,
        errors=[] if healed else ["read-back after fallback: node n2 did not rejoin"],
        needs_rebuild=needs_rebuild,
    )


# --- the pure decision -------------------------------------------------------------------------


def test_a_healthy_slot_needs_nothing() -> None:
    assert decide(SlotObservations(probes=OK, cluster=[], heals=[heal()])) == SlotDecision(
        "none", [], settled=True
    )


def test_a_failing_probe_rebuilds_a_local_slot_and_says_which() -> None:
    decision = decide(SlotObservations(probes=ROUTER_DOWN))
    assert decision.action == "rebuild"
    assert decision.reasons == ["router[0]: GET http://r/readyz: HTTP 503"]
    assert not decision.settled  # a probe may clear by itself: worth waiting a little


def test_a_remote_target_is_only_reported() -> None:
    decision = decide(SlotObservations(probes=ROUTER_DOWN, local=False))
    assert decision.action == "report"
    assert decision.reasons == ["router[0]: GET http://r/readyz: HTTP 503"]


def test_a_heal_that_says_rebuild_decides_at_once_even_with_every_probe_up() -> None:
    decision = decide(SlotObservations(probes=OK, heals=[heal(healed=False, needs_rebuild=True)]))
    assert decision.action == "rebuild" and decision.settled
    assert decision.reasons == [
        "fault k (storage_damage): its heal says the slot needs rebuilding "
        "(read-back after fallback: node n2 did not rejoin)"
    ]


def test_an_unhealed_fault_and_a_journal_leftover_are_each_named_once() -> None:
    decision = decide(
        SlotObservations(probes=OK, heals=[heal("a", healed=False)], journal=["a", "b"])
    )
    assert decision.action == "rebuild" and decision.settled
    assert decision.reasons == [
        "fault a (storage_damage) not healed: read-back after fallback: node n2 did not rejoin",
        "fault b still in the journal",
    ]


def test_a_cluster_not_whole_and_a_faulted_proxy_are_reasons() -> None:
    decision = decide(
        SlotObservations(
            probes=OK,
            cluster=["stream router-stream has no leader", "n3 has no route to harness-n1"],
            proxies=["proxy route_n1_n3 is disabled"],
        )
    )
    assert decision.action == "rebuild" and not decision.settled
    assert decision.reasons == [
        "cluster: stream router-stream has no leader",
        "cluster: n3 has no route to harness-n1",
        "toxiproxy: proxy route_n1_n3 is disabled",
    ]


# --- the keeper on fakes -----------------------------------------------------------------------


class FakeSlotStack:
    """A local stack whose rebuild leaves it healthy and clean (calls counted), or fails."""

    def __init__(self, fakes: FakeTarget, error: Exception | None = None) -> None:
        self.fakes = fakes
        self.error = error
        self.rebuilds: list[float] = []

    async def rebuild(self, timeout: float = 120.0) -> float:
        self.rebuilds.append(timeout)
        if self.error is not None:
            raise self.error
        self.fakes.healthy = True  # a fresh slot
        for proxy in self.fakes.toxiproxy.state.values():
            proxy.enabled, proxy.toxics = True, []
        return 0.5


@pytest.fixture
def target(tmp_path: Path) -> Target:
    return Target(
        name="local-slot-1",
        kind="local",
        nats_url="nats://127.0.0.1:1",
        toxiproxy_url="http://127.0.0.1:1",
        prometheus_url="http://127.0.0.1:2",
        alertmanager_url="http://127.0.0.1:3",
        run_dir=str(tmp_path / "slot"),
        profile=Profile(name="unit", time_compression=30.0),
    )


def keeper_for(target: Target, fakes: FakeTarget, stack: Any, *, grace: float = 0.0) -> SlotKeeper:
    ctx = FaultContext(target, fakes.toxiproxy, None)  # type: ignore[arg-type]
    return SlotKeeper(target, fakes.adapters(), ctx, Journal.for_target(target), stack, grace=grace)


def result(*heals: HealOutcome) -> ScenarioResult:
    faults = [
        FaultRecord(
            key=h.key, kind=h.kind, spec={}, planned_start_s=0, planned_duration_s=1, heal=h
        )
        for h in heals
    ]
    return ScenarioResult(
        scenario_id="NATS-005", base_id="NATS-005", title="t", run_id="r", faults=faults
    )


def test_the_control_a_healthy_slot_is_checked_and_not_rebuilt(target: Target) -> None:
    fakes = FakeTarget(["router_nats"])
    stack = FakeSlotStack(fakes)
    check = anyio.run(keeper_for(target, fakes, stack).after, result(heal()))
    assert stack.rebuilds == []
    assert check.healthy and check.action == "none" and check.problems == []
    assert check.slot == "local-slot-1" and check.after_scenario == "NATS-005"


def test_an_unhealthy_slot_is_rebuilt_and_the_evidence_says_why(target: Target) -> None:
    fakes = FakeTarget(["router_nats"])
    fakes.healthy = False
    stack = FakeSlotStack(fakes)
    check = anyio.run(keeper_for(target, fakes, stack).after, result())
    assert len(stack.rebuilds) == 1
    assert not check.healthy and check.action == "rebuilt"
    assert "nats: the fake is down" in check.problems
    assert check.rebuild_seconds is not None and check.error is None
    assert check.headline().startswith("local-slot-1 rebuilt after NATS-005 in ")


def test_a_transient_problem_that_clears_within_the_grace_is_no_rebuild(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("harness.slot_health.POLL_S", 0.05)
    fakes = FakeTarget(["router_nats"])
    fakes.healthy = False
    stack = FakeSlotStack(fakes)

    async def main() -> SlotCheck:
        async def recover() -> None:
            await anyio.sleep(0.3)
            fakes.healthy = True

        async with anyio.create_task_group() as tg:
            tg.start_soon(recover)
            return await keeper_for(target, fakes, stack, grace=5.0).after(result())

    check = anyio.run(main)
    assert stack.rebuilds == [] and check.healthy and check.action == "none"


def test_a_leftover_toxic_and_its_journal_entry_are_cleared_by_the_rebuild(
    target: Target,
) -> None:
    fakes = FakeTarget(["router_nats"])
    anyio.run(fakes.toxiproxy.set_enabled, "router_nats", False)
    journal = Journal.for_target(target)
    journal.add("r-NATS-005-f0", {"kind": "proxy_down", "spec": {}, "state": {}})
    stack = FakeSlotStack(fakes)
    check = anyio.run(
        keeper_for(target, fakes, stack).after, result(heal("r-NATS-005-f0", healed=False))
    )
    assert check.action == "rebuilt"
    assert "toxiproxy: proxy router_nats is disabled" in check.problems
    assert check.journal_cleared == ["r-NATS-005-f0"]
    assert journal.entries() == []


def test_a_failed_rebuild_is_recorded_with_its_error(target: Target) -> None:
    fakes = FakeTarget(["router_nats"])
    stack = FakeSlotStack(fakes, error=HarnessError("component router failed to start"))
    check = anyio.run(
        keeper_for(target, fakes, stack).after, result(heal(healed=False, needs_rebuild=True))
    )
    assert check.action == "rebuild_failed"
    assert check.error == "HarnessError: component router failed to start"
    assert "could NOT be rebuilt after NATS-005" in check.headline()


def test_a_remote_target_is_reported_never_rebuilt(target: Target) -> None:
    remote = target.model_copy(update={"kind": "external", "name": "staging"})
    fakes = FakeTarget(["router_nats"])
    fakes.healthy = False
    stack = FakeSlotStack(fakes)
    check = anyio.run(keeper_for(remote, fakes, stack).after, result())
    assert stack.rebuilds == []
    assert check.action == "not_rebuildable" and not check.healthy
    assert "a remote target is not rebuilt" in check.headline()


# --- evidence and the scenarios left -----------------------------------------------------------


def scenario(scenario_id: str) -> Scenario:
    return Scenario.model_validate(
        {
            "id": scenario_id,
            "title": f"unit {scenario_id}",
            "faults": [
                {"kind": "proxy_down", "proxy": "router_nats", "start": "0s", "duration": "1m"}
            ],
        }
    )


def test_scenarios_no_slot_could_take_are_errors_naming_the_broken_slot(target: Target) -> None:
    broken = SlotCheck(
        slot="local-slot-1",
        after_scenario="NATS-005",
        healthy=False,
        problems=["router[0]: down"],
        action="rebuild_failed",
        error="StackError: component router failed to start",
    )
    [left] = not_run([scenario("S1")], [target], [broken], "run-1")
    assert left.verdict == "error" and left.target == "local-slot-1"
    assert left.reason.startswith("not run: local-slot-1 could NOT be rebuilt after NATS-005")
    assert "component router failed to start" in left.reason


def test_evidence_round_trips_the_slot_check_and_older_evidence_still_reads() -> None:
    record = RunRecord(run_id="r", target={}, profile={}, time_compression=30.0)
    done = result()
    done.slot_after = SlotCheck(
        slot="local", after_scenario="NATS-005", healthy=False, action="rebuilt",
        problems=["router[0]: down"], rebuild_seconds=9.5,
    )  # fmt: skip
    record.scenarios = [done, result()]
    back = RunRecord.model_validate(record.document())
    assert back.slot_rebuilds() == [done.slot_after]
    older = record.document()
    for s in older["scenarios"]:
        s.pop("slot_after")
        for f in s["faults"]:
            f["heal"].pop("needs_rebuild", None)
    assert RunRecord.model_validate(older).slot_rebuilds() == []


def test_the_report_says_which_slot_was_rebuilt_and_which_scenario_was_not_run(
    target: Target, tmp_path: Path
) -> None:
    from harness.report.build import write_report

    done = result()
    done.verdict, done.reason = "failed", "a check failed"
    done.slot_after = SlotCheck(
        slot="local-slot-1", after_scenario="NATS-005", healthy=False, action="rebuilt",
        problems=["router[0]: GET http://r/readyz: HTTP 503"], rebuild_seconds=9.5,
        journal_cleared=["r-NATS-005-f0"],
    )  # fmt: skip
    broken = SlotCheck(
        slot="local-slot-1", after_scenario="S2", healthy=False, action="rebuild_failed",
        problems=["nats: down"], error="StackError: component nats failed to start",
    )  # fmt: skip
    [left] = not_run([scenario("S3")], [target], [broken], "r")
    second = result()
    second.scenario_id = second.base_id = "S2"
    second.slot_after = broken
    record = RunRecord(
        run_id="r", target={"name": "local-slot-1", "kind": "local"}, profile={"name": "local"},
        time_compression=30.0, scenarios=[done, second, left],
    )  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    (run / "evidence.json").write_text(json.dumps(record.document()))
    written = write_report([run], tmp_path / "report", workers=1)
    for text in (written.html.read_text(), written.markdown.read_text()):
        assert "local-slot-1 rebuilt after NATS-005 in 9.5s" in text
        assert "router[0]: GET http://r/readyz: HTTP 503" in text
        assert "journal entries cleared: r-NATS-005-f0" in text
        assert "local-slot-1 could NOT be rebuilt after S2" in text
        assert "not run: local-slot-1 could NOT be rebuilt after S2" in text


class StuckNode(FaultDriver):
    """A fault whose node never rejoins: every read-back after heal fails and says, as the
    storage-damage fault does, that the slot needs rebuilding."""

    kind = "stuck_node"
    spec_model = FaultBase

    async def apply(self) -> None: ...

    async def read_back(self) -> dict[str, Any]:
        return {}

    async def remove(self) -> None: ...

    async def fallback(self) -> None: ...

    async def prove_gone(self) -> dict[str, Any]:
        self.state[NEEDS_REBUILD] = True
        raise FaultStillPresent("node n2 did not rejoin")


def test_a_heal_that_cannot_recover_in_place_says_so_in_a_typed_field(target: Target) -> None:
    fakes = FakeTarget(["router_nats"])
    ctx = FaultContext(target, fakes.toxiproxy, None)  # type: ignore[arg-type]
    driver = StuckNode(FaultBase(duration="1s"), ctx, "r-CL-007-f0")
    outcome = anyio.run(FaultRunner(ctx, Journal.for_target(target), timeout=1.0).heal, driver)
    assert not outcome.healed and outcome.needs_rebuild
    decision = decide(SlotObservations(heals=[outcome]))
    assert decision.action == "rebuild" and decision.settled
    assert decision.reasons[0].startswith(
        "fault r-CL-007-f0 (stuck_node): its heal says the slot needs rebuilding"
    )


# --- the run's per-slot loop (execute) with its scenarios and slot checks faked -----------------


class InstantRun:
    """Stands in for `ScenarioRun`: the scenario passes at once, reported like a real one."""

    def __init__(self, orchestrator: Any, scenario: Scenario, ctx: FaultContext) -> None:
        self.orchestrator, self.scenario = orchestrator, scenario

    async def run(self) -> ScenarioResult:
        await anyio.sleep(0.05)
        result = ScenarioResult(
            scenario_id=self.scenario.id, base_id=self.scenario.id, title="t", run_id="r",
            target=self.orchestrator.target.name, verdict="passed",
        )  # fmt: skip
        self.orchestrator.hooks.on_result(result)
        return result


def keeper_failing_on(slot_name: str) -> type:
    """A `SlotKeeper` whose rebuild of `slot_name` fails (after its first scenario); every
    other slot is healthy."""

    class Keeper:
        def __init__(self, target: Target, *args: Any) -> None:
            self.target = target

        async def after(self, result: ScenarioResult) -> SlotCheck:
            failing = self.target.name == slot_name
            return SlotCheck(
                slot=self.target.name, after_scenario=result.scenario_id, healthy=not failing,
                action="rebuild_failed" if failing else "none",
                problems=["router[0]: down"] if failing else [],
                error="StackError: component router failed to start" if failing else None,
            )  # fmt: skip

    return Keeper


def slot_target(name: str) -> Target:
    return Target(
        name=name, nats_url="nats://127.0.0.1:1", toxiproxy_url="http://127.0.0.1:1",
        prometheus_url="http://127.0.0.1:2", alertmanager_url="http://127.0.0.1:3",
        profile=Profile(name="unit", time_compression=30.0),
    )  # fmt: skip


def run_loop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, targets: list[Target], failing: str
) -> RunRecord:
    from harness import runner
    from harness.contract import load_contract

    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "targets"))
    monkeypatch.setattr(runner, "ScenarioRun", InstantRun)
    monkeypatch.setattr(runner, "SlotKeeper", keeper_failing_on(failing))
    chosen = [scenario("S1"), scenario("S2"), scenario("S3")]
    return anyio.run(
        lambda: runner.execute(chosen, targets, load_contract(), tmp_path / "out", run_id="r")
    )


def test_a_slot_that_cannot_be_rebuilt_leaves_its_remaining_scenarios_in_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    record = run_loop(monkeypatch, tmp_path, [slot_target("staging-a")], "staging-a")
    verdicts = {r.scenario_id: (r.verdict, r.reason) for r in record.scenarios}
    assert verdicts["S1"] == ("passed", "")
    for left in ("S2", "S3"):
        verdict, reason = verdicts[left]
        assert verdict == "error"
        assert reason.startswith("not run: staging-a could NOT be rebuilt after S1: StackError")
    written = json.loads((tmp_path / "out" / "evidence.json").read_text())
    assert [s["verdict"] for s in written["scenarios"]] == ["passed", "error", "error"]
    assert written["scenarios"][0]["slot_after"]["action"] == "rebuild_failed"


def test_another_slot_of_the_topology_takes_what_the_broken_slot_left(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    targets = [slot_target("slot-a"), slot_target("slot-b")]
    record = run_loop(monkeypatch, tmp_path, targets, "slot-a")
    assert sorted(r.scenario_id for r in record.scenarios) == ["S1", "S2", "S3"]
    assert all(r.verdict == "passed" for r in record.scenarios)
    on_a = [r for r in record.scenarios if r.target == "slot-a"]
    assert len(on_a) == 1 and on_a[0].slot_after.action == "rebuild_failed"  # type: ignore[union-attr]
