"""`LocalStack.rebuild`, live: the stack comes back on the same ports (its target unchanged)
from empty stores, with new processes; a port another process holds fails it, clearly."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import nats
import pytest

from harness.stack.components.nats import Nats
from harness.stack.stack import LocalStack, StackError

pytestmark = pytest.mark.live


async def _add_stream(url: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="KEPT", subjects=["kept.>"])
        return [s.config.name for s in await js.streams_info()]
    finally:
        await nc.close()


async def _streams(url: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        return [s.config.name for s in await nc.jetstream().streams_info()]
    finally:
        await nc.close()


def test_rebuild_keeps_the_ports_and_target_and_starts_from_empty_stores(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path / "run", [Nats()])
    anyio.run(stack.up)
    try:
        url = stack.ctx.url("nats", scheme="nats")
        target = stack.target_path.read_text()
        pid = stack.record("nats").pid
        assert anyio.run(_add_stream, url) == ["KEPT"]

        seconds = anyio.run(stack.rebuild, 30.0)

        assert 0 < seconds < 30
        assert stack.ctx.url("nats", scheme="nats") == url
        assert stack.target_path.read_text() == target
        assert stack.record("nats").pid != pid and stack.record("nats").alive()
        assert anyio.run(_streams, url) == []  # a fresh store
    finally:
        stack.down()


def test_a_port_taken_meanwhile_fails_the_rebuild_and_leaves_the_stack_down(
    tmp_path: Path,
) -> None:
    stack = LocalStack(tmp_path / "run", [Nats()])
    anyio.run(stack.up)
    port = stack.ctx.port("nats")
    squatter = socket.socket()
    try:
        stack.down()
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        # stack.json is gone with `down`: write the state back as if the stack still ran
        anyio.run(stack.up)  # new ports, so the squatter cannot be the stack itself
        state = stack.read_state()
        assert state is not None
        state.ports["nats"]["main"] = port
        stack._write_state(state)
        with pytest.raises(StackError, match=rf"on its ports: {port} still taken"):
            anyio.run(lambda: stack.rebuild(20.0))
        assert stack.read_state() is None  # down: nothing half up
    finally:
        squatter.close()
        stack.down()
