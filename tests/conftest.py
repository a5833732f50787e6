"""Shared fixtures: real components started through the local stack's own component code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from harness.config import Target, load_target
from harness.stack.components.nats import Nats
from harness.stack.stack import LocalStack
from tests.faults.live import repair, stack_problems, wait_usable


class NatsServer:
    """A real nats-server with JetStream that a test can stop and start on the same port."""

    def __init__(self, run_dir: Path):
        self.stack = LocalStack(run_dir, [Nats()])

    @property
    def url(self) -> str:
        return self.stack.ctx.url("nats", scheme="nats")

    @property
    def port(self) -> int:
        return self.stack.ctx.port("nats")

    def stop(self) -> None:
        self.stack.stop_component("nats")

    def start(self) -> None:
        """Start again (same port, same JetStream store) and wait until JetStream answers."""
        anyio.run(self.stack.start_component, "nats")

    async def astart(self) -> None:
        await self.stack.start_component("nats")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh nats-server for one test, stopped (and proven gone) afterwards."""
    server = NatsServer(tmp_path / "nats-stack")
    anyio.run(server.stack.up)
    try:
        yield server
    finally:
        server.stack.down()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The whole local stack (NATS, Toxiproxy, router, webhook, Alertmanager, Prometheus),
    shared by the session's live tests; each test must heal what it injects."""
    stack = LocalStack(tmp_path_factory.mktemp("local-stack") / "run")
    anyio.run(stack.up)
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture
def target(local_stack: LocalStack) -> Target:
    """The local stack's target, as written to its target.yaml."""
    return load_target(local_stack.target_path)


@pytest.fixture
def clean_stack(local_stack: LocalStack, target: Target) -> Iterator[LocalStack]:
    """The session stack, usable before the test; after it, anything left behind (a toxic, a
    disabled proxy, an armed router fault, a journal entry, a stopped component) is repaired
    so later tests can go on, and fails this test."""
    anyio.run(wait_usable, local_stack, target)
    yield local_stack
    problems = anyio.run(stack_problems, local_stack, target)
    if problems:
        anyio.run(repair, local_stack, target)
    anyio.run(wait_usable, local_stack, target)
    assert not problems, f"the test left the shared stack dirty: {problems}"
