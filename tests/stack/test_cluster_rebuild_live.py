"""A cluster slot after a scenario, live: whole (every node answering with its routes, a meta
leader, every stream led with current replicas) is left alone; a node down is seen by the
cluster view and the probes, and the slot is rebuilt whole on the same ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from harness.adapters import Adapters
from harness.config import Target
from harness.evidence.record import ScenarioResult, SlotCheck
from harness.faults.base import FaultContext
from harness.faults.cluster import wait_whole
from harness.faults.journal import Journal
from harness.http import async_client
from harness.slot_health import SlotKeeper
from harness.stack.component import StackOptions
from harness.stack.stack import LocalStack

pytestmark = pytest.mark.live


@pytest.fixture
def slot(tmp_path: Path) -> Iterator[tuple[LocalStack, Target]]:
    stack = LocalStack(tmp_path / "slot", options=StackOptions(nats_cluster=3))
    target = anyio.run(stack.up)
    try:
        yield stack, target
    finally:
        stack.down()


def after(scenario_id: str) -> ScenarioResult:
    return ScenarioResult(scenario_id=scenario_id, base_id=scenario_id, title="t", run_id="r")


def test_a_whole_cluster_is_kept_and_one_with_a_node_down_is_rebuilt_whole(
    slot: tuple[LocalStack, Target],
) -> None:
    stack, target = slot
    ports = stack.read_state().ports  # type: ignore[union-attr]

    async def main() -> tuple[SlotCheck, SlotCheck, list[str], SlotCheck]:
        adapters = Adapters.for_target(target)
        async with async_client(5.0) as http:
            ctx = FaultContext(target, adapters.toxiproxy, http, stack)
            keeper = SlotKeeper(target, adapters, ctx, Journal.for_target(target), stack, grace=3.0)
            _, problems = await wait_whole(ctx, 20.0)
            assert problems == [], problems
            control = await keeper.after(after("CONTROL"))
            await anyio.to_thread.run_sync(stack.stop_component, "nats-n2")
            broken = await keeper.after(after("NODE-DOWN"))
            _, left = await wait_whole(ctx, 30.0)
            again = await keeper.after(after("AFTER-REBUILD"))
            return control, broken, left, again

    control, broken, left, again = anyio.run(main)
    assert control.action == "none" and control.healthy, control.problems
    assert broken.action == "rebuilt", broken
    assert any(p.startswith("cluster: n2 did not answer") for p in broken.problems), broken
    assert any(p.startswith("nats n2: ") for p in broken.problems), broken
    assert left == [], left  # whole again: routes, leaders, current replicas
    assert again.action == "none" and again.healthy, again.problems
    assert stack.read_state().ports == ports  # type: ignore[union-attr]
    print(f"cluster rebuild {broken.rebuild_seconds}s; checks {control.check_seconds}s")
