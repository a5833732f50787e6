"""Fixtures: one server for the session (cleaned after each test) and loopback upstreams."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.toxiproxy.helpers import Api, ServerThread, Upstream


@pytest.fixture(scope="session")
def server() -> Iterator[ServerThread]:
    with ServerThread(seed=1234) as running:
        yield running


@pytest.fixture
def api(server: ServerThread) -> Iterator[Api]:
    client = Api(server.url)
    client.clear()
    yield client
    client.clear()


@pytest.fixture(scope="session")
def echo() -> Iterator[Upstream]:
    upstream = Upstream("echo")
    yield upstream
    upstream.close()


@pytest.fixture
def sink() -> Iterator[Upstream]:
    upstream = Upstream("sink")
    yield upstream
    upstream.close()
