"""The disconnected-publish queue (§6.8, NATS-007): cap, drop-oldest, FIFO flush, fail-open.

In-process against a stand-in link, so the order of what is dropped and flushed is exact.
"""

from __future__ import annotations

import asyncio
from typing import Any

from router.config import Config
from router.faults import FaultHook
from router.metrics import Metrics
from router.publisher import Publisher
from router.reasons import NotConnected


class FakeLink:
    """The supervisor's face to the publisher: connected or not, fail-open or not, one client."""

    def __init__(self) -> None:
        self.connected = False
        self.fail_open = False
        self.sent: list[tuple[str, bytes]] = []

    def client(self) -> FakeLink:
        if not self.connected:
            raise NotConnected()
        return self

    jetstream = client

    async def publish(self, subject: str, payload: bytes, **_: Any) -> None:
        self.sent.append((subject, payload))


def make(cap: int) -> tuple[Publisher, FakeLink, Metrics]:
    config = Config(max_pending_operations=cap)
    metrics = Metrics(config)
    link = FakeLink()
    return Publisher(config, metrics, FaultHook(), link), link, metrics  # type: ignore[arg-type]


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_queue_cap_drops_the_oldest_and_the_flush_empties_it_in_order() -> None:
    publisher, link, m = make(cap=2)

    async def scenario() -> list[str]:
        outcomes = [
            await publisher.publish("r", b"1", label_subject="r"),
            await publisher.publish("r", b"2", label_subject="r"),
            await publisher.publish_with_ack("d", b"3"),
        ]
        assert [op.payload for op in publisher.queue] == [b"2", b"3"]
        assert value(m, "router_nats_pending_operations_count") == 2
        assert value(m, "router_nats_pending_operations_dropped_total") == 1
        link.connected = True
        await publisher.flush_pending()
        return outcomes

    assert asyncio.run(scenario()) == ["queued", "queued", "queued"]
    assert link.sent == [("r", b"2"), ("d", b"3")]
    assert value(m, "router_nats_pending_operations_count") == 0
    assert value(m, "router_nats_pending_operations_retry_total") == 2
    assert value(m, "router_nats_pending_operations_retry_success_total") == 2
    assert value(m, "router_nats_pending_operations_retry_failed_total") == 0
    # Every try while disconnected is a counted failure with reason not_connected.
    failures = "router_nats_publish_failures_total"
    assert value(m, failures, reason="not_connected", subject="r", stream="core", source="publish")
    assert value(m, "router_nats_publish_attempts_total", status="error", retry_count="0") == 3
    assert value(m, "router_nats_publish_attempts_total", status="success", retry_count="1") == 2


def test_fail_open_drops_instead_of_queueing() -> None:
    publisher, link, m = make(cap=10)
    link.fail_open = True
    assert asyncio.run(publisher.publish("r", b"1", label_subject="r")) == "failed"
    assert not publisher.queue
    assert value(m, "router_nats_pending_operations_count") == 0
    assert value(m, "router_nats_pending_operations_dropped_total") == 0


def test_connected_publish_is_sent_not_queued() -> None:
    publisher, link, m = make(cap=10)
    link.connected = True
    assert asyncio.run(publisher.publish("r", b"1", label_subject="r")) == "sent"
    assert link.sent == [("r", b"1")] and not publisher.queue
    assert value(m, "router_nats_publish_total") == 1
