"""The NATS admin adapter fails fast with NatsAdminError naming the URL and the call, never a
nats-py or socket exception (nothing listens on the port)."""

from __future__ import annotations

import time

import anyio
import pytest

from harness.errors import NatsAdminError
from harness.nats_admin import NatsAdmin
from harness.stack.ports import free_port


def test_an_unreachable_server_is_a_nats_admin_error_naming_url_and_call() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(NatsAdminError) as caught:
        anyio.run(NatsAdmin(url).consumer_info, "router-stream", "router-decide-consumer")
    assert time.monotonic() - started < 5, "an admin call fails fast"
    assert url in str(caught.value)
    assert "consumer info router-stream/router-decide-consumer" in str(caught.value)
