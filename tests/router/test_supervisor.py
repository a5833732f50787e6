"""Reconnect supervision (catalogue §6.7, NATS-002/003): backoff schedule, and exhaustion after
`--max-reconnect-attempts` failures counted once, with fail-open and the `disconnected` state."""

from __future__ import annotations

from router.config import Config
from router.faults import FaultHook
from router.metrics import Metrics
from router.supervisor import Supervisor


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    c = Config()
    assert [c.reconnect_delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    fast = Config(reconnect_delay_ms=100, max_reconnect_delay_ms=500)
    assert [fast.reconnect_delay(n) for n in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_exhaustion_is_counted_once_at_the_limit_and_enters_fail_open() -> None:
    config = Config(max_reconnect_attempts=3, nats_cluster="c1")
    metrics = Metrics(config)
    link = Supervisor(config, metrics, FaultHook())
    exhausted = "router_nats_reconnection_exhausted_total"
    refused = ConnectionRefusedError()
    for failures in (1, 2):
        link._count_connect_failure(refused, failures, initial=False)
        assert metrics.connection_state == "reconnecting" and not link.fail_open
    assert metrics.registry.get_sample_value(exhausted) == 0
    for failures in (3, 4, 5):  # retries go on at the cap, exhaustion is not re-counted
        link._count_connect_failure(refused, failures, initial=False)
        assert metrics.connection_state == "disconnected" and link.fail_open
    assert metrics.registry.get_sample_value(exhausted) == 1
    by_attempt = {
        attempt: metrics.registry.get_sample_value(
            "router_nats_reconnect_failures_total",
            {"reason": "connection_refused", "cluster": "c1", "attempt": attempt},
        )
        for attempt in ("1", "2", "3")
    }
    assert by_attempt == {"1": 1, "2": 1, "3": 3}  # the attempt label is capped at the limit
