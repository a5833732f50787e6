"""A cluster slot live, run with `sync_interval: always` and back: preflight's step restarts
the three real nats-servers (leaders last, the cluster whole after each), every node's
`/varz` reports the setting, an R3 stream keeps its acknowledged messages across the restarts,
a node restarted later (as a kill fault's heal does, from another process's view of the slot)
comes back with it, and restoring the slot's own setting brings the server default back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest

from harness.config import Target
from harness.faults.base import FaultContext
from harness.readback import durability, monitors_of
from harness.stack.component import StackOptions
from harness.stack.stack import LocalStack
from harness.sync_apply import apply
from harness.syncinterval import mismatches

pytestmark = [pytest.mark.live, pytest.mark.anyio]

STREAM, SUBJECT, COUNT = "SYNCTEST", "synctest.x", 20


@pytest.fixture
async def slot(tmp_path: Any) -> AsyncIterator[tuple[LocalStack, Target]]:
    stack = LocalStack(tmp_path / "slot", options=StackOptions(nats_cluster=3))
    target = await stack.up()
    try:
        yield stack, target
    finally:
        stack.down()


async def stream_messages(target: Target) -> int:
    client = await nats.connect(servers=[str(u) for u in target.nats_servers])
    try:
        return int((await client.jetstream().stream_info(STREAM)).state.messages)
    finally:
        await client.close()


async def publish(target: Target) -> None:
    client = await nats.connect(servers=[str(u) for u in target.nats_servers])
    try:
        js = client.jetstream()
        await js.add_stream(name=STREAM, subjects=[SUBJECT], num_replicas=3)
        for i in range(COUNT):
            await js.publish(SUBJECT, str(i).encode())
    finally:
        await client.close()


async def test_cluster_runs_sync_always_then_its_own_setting_again(
    slot: tuple[LocalStack, Target],
) -> None:
    stack, target = slot
    monitors = monitors_of(target)
    assert mismatches(None, await durability(monitors)) == []  # the server default: 2m
    await publish(target)
    async with httpx.AsyncClient(timeout=5) as http:
        ctx = FaultContext(target=target, toxiproxy=None, http=http, stack=stack)  # type: ignore[arg-type]

        started = time.monotonic()
        applied = await apply(ctx, "always")
        took = time.monotonic() - started
        assert applied is not None and sorted(applied.restarted) == [
            "nats-n1",
            "nats-n2",
            "nats-n3",
        ]
        running = await durability(monitors)
        assert [d.sync_always for d in running] == [True, True, True], running
        assert await stream_messages(target) == COUNT
        print(f"restart with sync always: {took:.1f}s, order {applied.restarted}")

        # a node a fault kills and restarts, from a stack attached afresh, keeps the setting
        other = LocalStack.attach(stack.run_dir)
        other.stop_component("nats-n2")
        await other.start_component("nats-n2")
        assert (await durability({"n2": monitors["n2"]}))[0].sync_always is True

        # asked again: nothing to restart
        again = await apply(ctx, "always")
        assert again is not None and again.restarted == []

        started = time.monotonic()
        restored = await apply(ctx, None)
        took = time.monotonic() - started
        assert restored is not None and restored.wanted == "default"
        running = await durability(monitors)
        assert mismatches(None, running) == [], running
        assert {d.sync_interval_s for d in running} == {120.0}
        assert not any(d.sync_always for d in running)
        assert await stream_messages(target) == COUNT
        assert LocalStack.attach(stack.run_dir).ctx.sync_interval is None
        print(f"restore: {took:.1f}s")


async def test_single_node_runs_sync_always_then_its_own_setting_again(tmp_path: Any) -> None:
    """The classic single-server slot: nats-server has no flag for the setting, so it gets a
    config file beside its flags; the router reconnects to the restarted server."""
    stack = LocalStack(tmp_path / "slot", options=StackOptions(nats_cluster=1))
    target = await stack.up()
    try:
        monitors = monitors_of(target)
        assert list(monitors) == ["nats"]
        async with httpx.AsyncClient(timeout=5) as http:
            ctx = FaultContext(target=target, toxiproxy=None, http=http, stack=stack)  # type: ignore[arg-type]
            applied = await apply(ctx, "always")
            assert applied is not None and applied.restarted == ["nats"]
            assert (await durability(monitors))[0].sync_always is True
            restored = await apply(ctx, None)
            assert restored is not None and restored.restarted == ["nats"]
            assert mismatches(None, await durability(monitors)) == []
            assert [s.state for s in await stack.status()].count("up") == len(stack.components)
    finally:
        stack.down()
