"""Live router behaviour on a real nats-server: replies, ACK/NAK, DLQ, fault hook, reconnect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.subscription import Subscription

from tests.conftest import NatsServer
from tests.router.conftest import DEADLINE, RouterProcess, wait_for

pytestmark = pytest.mark.live

SUBJECT = "beamline.router.v1.decide"
# Tests that count the reply queue exactly switch usage events off: each decision would add one
# more queued publish (usage events are covered by test_router_http_live.py).
NO_USAGE = "--usage-events=false"
REPLY = f"{SUBJECT}.reply"
DLQ = f"{SUBJECT}.dlq"
ACK_LABELS = {"subject": SUBJECT, "stream": "router-stream", "consumer": "router-decide-consumer"}


def request(request_id: str, tenant: str = "tenant-a", **extra: Any) -> bytes:
    body = {"version": "1", "request_id": request_id, "tenant_id": tenant, "task": {"type": "chat"}}
    body.update(extra)
    return json.dumps(body).encode()


async def connect(url: str) -> Client:
    return await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)


async def next_json(sub: Subscription, timeout: float = DEADLINE) -> dict[str, Any]:
    msg = await sub.next_msg(timeout=timeout)
    return json.loads(msg.data)


async def consumer_counts(nc: Client) -> tuple[int, int]:
    info = await nc.jetstream().consumer_info("router-stream", "router-decide-consumer")
    return info.num_pending, info.num_ack_pending


async def poll(condition: Callable[[], Any], timeout: float = DEADLINE) -> None:
    """Async twin of wait_for, for conditions that talk to NATS."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {condition}")


def test_valid_requests_get_a_decision_and_are_acked(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    router = start_router(nats_server.url, "--tenant-allowlist", "tenant-a,tenant-b")

    async def scenario() -> None:
        nc = await connect(nats_server.url)
        replies = await nc.subscribe(REPLY)
        inbox = nc.new_inbox()
        private = await nc.subscribe(inbox)
        js = nc.jetstream()
        for i in range(5):
            await js.publish(SUBJECT, request(f"ok-{i}"))
        await js.publish(SUBJECT, request("ok-inbox", "tenant-b"), headers={"reply-to": inbox})
        got = {}
        for _ in range(5):
            body = await next_json(replies)
            got[body["context"]["request_id"]] = body
        assert set(got) == {f"ok-{i}" for i in range(5)}
        for body in got.values():
            assert body["ok"] is True
            assert body["decision"]["provider_id"] in ("provider-a", "provider-b")
        own = await next_json(private)
        assert own["ok"] is True and own["context"]["request_id"] == "ok-inbox"

        async def all_acked() -> bool:
            return await consumer_counts(nc) == (0, 0)

        await poll(all_acked)
        await nc.close()

    asyncio.run(scenario())
    assert router.wait_value("router_nats_ack_total", lambda v: v >= 6) >= 6
    assert router.value("router_jetstream_processed_success_total") == 6
    assert router.value("router_nats_ack_failures_total") == 0
    assert router.value("router_jetstream_redelivered_messages_total") == 0


def test_disallowed_tenant_is_naked_until_max_deliver_then_dead_lettered(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    router = start_router(
        nats_server.url,
        "--tenant-allowlist",
        "tenant-a",
        "--label-tenants",
        "tenant-evil",
        "--max-deliver",
        "3",
        "--backoff",
        "0.1,0.2",
    )

    async def scenario() -> dict[str, Any]:
        nc = await connect(nats_server.url)
        replies = await nc.subscribe(REPLY)
        dlq = await nc.subscribe(DLQ)
        await nc.jetstream().publish(
            SUBJECT, request("poison-1", "tenant-evil"), headers={"trace_id": "tr-1"}
        )
        for _ in range(3):  # one error reply per delivery
            body = await next_json(replies)
            assert body["ok"] is False
            assert body["error"]["intake_error_code"] == "tenant_forbidden"
            assert body["context"]["request_id"] == "poison-1"
        msg = await dlq.next_msg(timeout=DEADLINE)
        record = json.loads(msg.data)
        assert msg.headers["x-dlq-reason"] == "maxdeliver_exhausted"
        assert msg.headers["x-original-msg-id"] == record["msg_id"]

        async def terminated() -> bool:
            return await consumer_counts(nc) == (0, 0)

        await poll(terminated)
        with pytest.raises(nats.errors.TimeoutError):  # no 4th delivery after TERM
            await replies.next_msg(timeout=1.5)
        await nc.close()
        return record

    record = asyncio.run(scenario())
    assert record["original_subject"] == SUBJECT
    assert record["reason"] == "maxdeliver_exhausted"
    assert record["error_code"] == "MAXDELIVER_EXHAUSTED"
    assert record["tenant_id"] == "tenant-evil" and record["trace_id"] == "tr-1"
    assert record["delivery_count"] == 3 and record["max_deliver"] == 3
    assert json.loads(record["message"])["request_id"] == "poison-1"
    assert isinstance(record["timestamp"], int)

    base = {"reason": "tenant_validation_failed", "tenant_id": "tenant-evil"}
    assert router.value("router_jetstream_redelivery_total", delivery_count="1", **base) == 1
    assert router.value("router_jetstream_redelivery_total", delivery_count="2", **base) == 1
    assert router.value("router_jetstream_redelivery_total") == 2
    assert router.value("router_nats_nak_total") == 2
    assert router.value("router_jetstream_redelivered_messages_total") == 2
    assert router.value("router_decide_tenant_rejected_total", tenant_id="tenant-evil") == 3
    assert (
        router.value(
            "router_jetstream_maxdeliver_exhausted_total",
            tenant_id="tenant-evil",
            delivery_count="3",
            max_deliver="3",
        )
        == 1
    )
    assert (
        router.value("router_dlq_total", source="tenant_validation", tenant_id="tenant-evil") == 1
    )
    assert router.value("router_nats_publish_with_ack_total") == 1
    assert router.value("router_jetstream_redelivery_decision_total", decision="term") == 1


def test_invalid_requests_get_an_error_reply_and_are_acked(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    router = start_router(nats_server.url)

    async def scenario() -> list[dict[str, Any]]:
        nc = await connect(nats_server.url)
        replies = await nc.subscribe(REPLY)
        js = nc.jetstream()
        await js.publish(SUBJECT, b"{not json")
        await js.publish(SUBJECT, request("old-version", version="0"))
        await js.publish(SUBJECT, json.dumps({"version": "1", "tenant_id": "t"}).encode())
        bodies = [await next_json(replies) for _ in range(3)]

        async def acked() -> bool:
            return await consumer_counts(nc) == (0, 0)

        await poll(acked)
        await nc.close()
        return bodies

    bodies = asyncio.run(scenario())
    assert all(b["ok"] is False and b["error"]["code"] == "invalid_request" for b in bodies)
    codes = sorted(b["error"]["intake_error_code"] for b in bodies)
    assert codes == ["schema_validation_failed", "schema_validation_failed", "version_unsupported"]
    assert router.value("router_intake_validation_errors_total") == 3
    assert (
        router.value("router_intake_validation_errors_total", error_code="version_unsupported") == 1
    )
    assert router.wait_value("router_nats_ack_total", lambda v: v >= 3) == 3
    assert router.value("router_nats_nak_total") == 0
    assert router.value("router_jetstream_redelivery_total") == 0


def test_fault_hook_makes_acks_fail_with_the_injected_reason(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    router = start_router(nats_server.url, "--enable-fault-hook", "--ack-wait", "1")
    status, body = router.http("POST", "/faults", {"op": "ack", "mode": "timeout", "ms": 50})
    assert status == 201 and body["faults"]["ack"]["mode"] == "timeout"
    assert router.http("POST", "/faults", {"op": "ack", "mode": "bogus"})[0] == 400
    assert router.http("POST", "/faults", {"op": "ack", "mode": "error", "reason": "x y"})[0] == 400

    async def publish_one(request_id: str) -> None:
        nc = await connect(nats_server.url)
        await nc.jetstream().publish(SUBJECT, request(request_id))
        await nc.close()

    asyncio.run(publish_one("fault-1"))
    router.wait_value(
        "router_nats_ack_failures_total", lambda v: v >= 2, reason="timeout", **ACK_LABELS
    )
    assert router.value("router_nats_ack_total") == 0
    # The un-ACKed message comes back after ack_wait: an ACK failure is not a NAK.
    assert router.value("router_jetstream_redelivered_messages_total") >= 1
    assert router.value("router_jetstream_redelivery_total") == 0
    _, snapshot = router.http("GET", "/faults")
    assert snapshot["faults"]["ack"]["injected"] >= 2

    router.http("POST", "/faults", {"op": "ack", "mode": "error", "reason": "connection_closed"})
    router.wait_value(
        "router_nats_ack_failures_total", lambda v: v >= 1, reason="connection_closed"
    )

    assert router.http("DELETE", "/faults")[1]["faults"] == {}
    router.wait_value("router_nats_ack_total", lambda v: v >= 1)


def test_nats_restart_moves_connection_metrics_and_flushes_the_queue(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    router = start_router(
        nats_server.url, "--enable-fault-hook", "--max-reconnect-attempts", "50", NO_USAGE
    )
    assert router.connection_state() == "connected"
    # Hold the reply publish long enough for NATS to be gone when it is attempted.
    router.http("POST", "/faults", {"op": "publish", "mode": "delay", "ms": 5000})

    async def publish_one() -> None:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().publish(SUBJECT, request("restart-1"))
        await nc.close()

    asyncio.run(publish_one())
    wait_for(lambda: router.value("router_jetstream_delivered_messages_total") >= 1)
    nats_server.stop()

    router.wait_value("router_nats_connection_lost_total", lambda v: v == 1)
    router.wait_value("router_nats_pending_operations_count", lambda v: v == 1)
    router.wait_value(
        "router_nats_publish_failures_total", lambda v: v == 1, reason="not_connected"
    )
    router.wait_value("router_nats_ack_failures_total", lambda v: v == 1, reason="not_connected")
    router.wait_value("router_nats_reconnect_failures_total", lambda v: v >= 2)
    assert router.value("router_nats_reconnect_attempts_total") >= 2
    assert router.connection_state() in ("reconnecting", "disconnected")
    router.http("DELETE", "/faults/publish")
    # Keep the router out until the test's reply subscription is in place.
    router.http(
        "POST", "/faults", {"op": "connect", "mode": "error", "reason": "connection_refused"}
    )

    async def restart_and_collect() -> list[dict[str, Any]]:
        await nats_server.astart()
        nc = await connect(nats_server.url)
        replies = await nc.subscribe(REPLY)
        await nc.flush()
        router.http("DELETE", "/faults/connect")
        # The queued reply is flushed on reconnect; the un-ACKed request is redelivered and
        # answered again after ack_wait.
        bodies = [await next_json(replies), await next_json(replies)]
        await nc.close()
        return bodies

    bodies = asyncio.run(restart_and_collect())
    assert [b["context"]["request_id"] for b in bodies] == ["restart-1", "restart-1"]
    router.wait_value("router_nats_connection_restored_total", lambda v: v == 1)
    assert router.connection_state() == "connected"
    assert router.value("router_nats_pending_operations_count") == 0
    assert router.value("router_nats_pending_operations_retry_total") == 1
    assert router.value("router_nats_pending_operations_retry_success_total") == 1
    assert router.value("router_nats_connection_established_total") == 1
    router.wait_value("router_nats_ack_total", lambda v: v >= 1)
    statuses = [
        line
        for line in router_metrics_lines(router)
        if line.startswith("router_nats_connection_status")
    ]
    assert statuses == ['router_nats_connection_status{state="connected"} 1.0']


def router_metrics_lines(router: RouterProcess) -> list[str]:
    from tests.router.conftest import scrape

    return scrape(router.metrics_port).splitlines()


def test_start_without_nats_counts_failures_exhausts_and_recovers(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    nats_server.stop()
    router = start_router(
        nats_server.url,
        "--max-reconnect-attempts",
        "3",
        "--max-reconnect-delay-ms",
        "300",
        wait_connected=False,
    )
    router.wait_value(
        "router_nats_connect_failures_total",
        lambda v: v >= 3,
        reason="connection_refused",
        source="initial_connect",
    )
    router.wait_value("router_nats_reconnection_exhausted_total", lambda v: v == 1)
    assert router.connection_state() == "disconnected"
    status, body = router.http("GET", "/healthz")
    assert status == 200 and body["nats"]["fail_open"] is True
    assert router.http("GET", "/readyz")[0] == 503

    nats_server.start()
    router.wait_value("router_nats_connection_established_total", lambda v: v == 1)
    router.wait_value("router_nats_subscribe_total", lambda v: v >= 1)
    assert router.connection_state() == "connected"
    assert router.http("GET", "/healthz")[1]["nats"]["fail_open"] is False
    assert router.value("router_nats_reconnection_exhausted_total") == 1


def test_backpressure_active_naks_with_reason_backpressure(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    # Thresholds below any reading: queue and latency are "overloaded" -> 2 of 3 -> active.
    router = start_router(
        nats_server.url,
        "--bp-queue-threshold=-1",
        "--bp-latency-threshold-ms=-1",
        "--bp-retry-after",
        "30",
    )
    router.wait_value("router_intake_backpressure_active", lambda v: v == 1)
    assert router.value("router_backpressure_events_total", event_type="backpressure_active") == 1
    assert router.value("router_intake_backpressure_triggered_total", trigger="queue_overload") == 1
    assert (
        router.value("router_intake_backpressure_triggered_total", trigger="latency_overload") == 1
    )
    assert (
        router.value("router_intake_backpressure_triggered_total", trigger="inflight_overload") == 0
    )

    async def publish_one() -> None:
        nc = await connect(nats_server.url)
        await nc.jetstream().publish(SUBJECT, request("bp-1"))
        await nc.close()

    asyncio.run(publish_one())
    router.wait_value("router_nats_nak_total", lambda v: v == 1)
    assert (
        router.value("router_intake_backpressure_rejections_total", reason="backpressure_active")
        == 1
    )
    assert (
        router.value(
            "router_jetstream_redelivery_total",
            reason="backpressure",
            source="backpressure",
            delivery_count="1",
        )
        == 1
    )
    assert router.value("router_jetstream_processed_success_total") == 0


async def publish_requests(url: str, *request_ids: str) -> None:
    nc = await connect(url)
    for request_id in request_ids:
        await nc.jetstream().publish(SUBJECT, request(request_id))
    await nc.close()


def test_reconnect_exhaustion_after_a_loss_enters_fail_open_and_drops_publishes(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    """NATS-003 (scheme A): an outage longer than --max-reconnect-attempts failures counts
    `reconnection_exhausted` once, enters fail-open (a publish is dropped, not queued) and keeps
    retrying at the cap; the restore resets fail-open to the configured value."""
    router = start_router(
        nats_server.url, "--enable-fault-hook", "--max-reconnect-attempts", "2", NO_USAGE
    )
    # Hold the reply publish until the router has given up reconnecting.
    router.http("POST", "/faults", {"op": "publish", "mode": "delay", "ms": 6000})
    asyncio.run(publish_requests(nats_server.url, "exhaust-1"))
    wait_for(lambda: router.value("router_jetstream_delivered_messages_total") >= 1)
    nats_server.stop()

    router.wait_value("router_nats_connection_lost_total", lambda v: v == 1)
    router.wait_value("router_nats_reconnection_exhausted_total", lambda v: v == 1)
    assert router.connection_state() == "disconnected"
    assert router.http("GET", "/healthz")[1]["nats"]["fail_open"] is True
    assert router.value("router_nats_reconnect_failures_total", attempt="2") >= 1
    router.wait_value(
        "router_nats_publish_failures_total", lambda v: v == 1, reason="not_connected"
    )
    assert router.value("router_nats_pending_operations_count") == 0
    assert router.value("router_nats_pending_operations_dropped_total") == 0
    # Retries go on at the cap after exhaustion; exhaustion is counted once per outage.
    attempts = router.value("router_nats_reconnect_attempts_total")
    router.wait_value("router_nats_reconnect_attempts_total", lambda v: v >= attempts + 2)
    assert router.value("router_nats_reconnection_exhausted_total") == 1

    router.http("DELETE", "/faults")
    nats_server.start()
    router.wait_value("router_nats_connection_restored_total", lambda v: v == 1)
    assert router.connection_state() == "connected"
    assert router.http("GET", "/healthz")[1]["nats"]["fail_open"] is False
    assert router.value("router_nats_pending_operations_retry_total") == 0
    assert router.value("router_nats_reconnection_exhausted_total") == 1


def test_pending_queue_cap_drops_the_oldest_and_the_flush_brings_the_gauge_to_zero(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    """NATS-007: publishes while disconnected queue up to --max-pending-operations; beyond it
    the oldest is dropped and counted; the flush on reconnect empties the queue."""
    router = start_router(
        nats_server.url,
        "--enable-fault-hook",
        "--max-reconnect-attempts",
        "50",
        "--max-pending-operations",
        "2",
        NO_USAGE,
    )
    router.http("POST", "/faults", {"op": "publish", "mode": "delay", "ms": 5000})
    asyncio.run(publish_requests(nats_server.url, "cap-1", "cap-2", "cap-3"))
    wait_for(lambda: router.value("router_jetstream_delivered_messages_total") >= 3)
    nats_server.stop()

    router.wait_value(
        "router_nats_publish_failures_total", lambda v: v == 3, reason="not_connected"
    )
    assert router.value("router_nats_pending_operations_count") == 2
    assert router.value("router_nats_pending_operations_dropped_total") == 1
    assert router.http("GET", "/healthz")[1]["nats"]["pending_operations"] == 2

    router.http("DELETE", "/faults")
    nats_server.start()
    router.wait_value("router_nats_connection_restored_total", lambda v: v == 1)
    router.wait_value("router_nats_pending_operations_retry_total", lambda v: v == 2)
    assert router.value("router_nats_pending_operations_retry_success_total") == 2
    assert router.value("router_nats_pending_operations_retry_failed_total") == 0
    assert router.value("router_nats_pending_operations_count") == 0
    assert router.value("router_nats_pending_operations_dropped_total") == 1


def test_in_flight_and_latency_together_activate_backpressure(
    nats_server: NatsServer, start_router: Callable[..., RouterProcess]
) -> None:
    """PERF-001/003/004: slow replies raise the intake latency histogram and p95, held messages
    raise the in-flight gauge; one threshold alone is a warning, latency + in-flight is active."""
    router = start_router(
        nats_server.url,
        "--enable-fault-hook",
        "--ack-wait",
        "15",
        "--bp-queue-threshold",
        "1000000",
        "--bp-latency-threshold-ms",
        "1000",
        "--bp-inflight-threshold",
        "2",
        NO_USAGE,  # one held publish per message: the 2 s per message the waves rely on
    )
    router.http("POST", "/faults", {"op": "publish", "mode": "delay", "ms": 2000})
    active = "router_intake_backpressure_active"
    triggered = "router_intake_backpressure_triggered_total"
    events = "router_backpressure_events_total"
    inflight = "router_intake_inflight_messages"

    # Wave 1: three slow messages; in flight together, but no latency sample yet -> warning.
    asyncio.run(publish_requests(nats_server.url, "slow-1", "slow-2", "slow-3"))
    router.wait_value(inflight, lambda v: v == 3, subject=SUBJECT)
    router.wait_value("router_jetstream_processed_success_total", lambda v: v == 3)
    router.wait_value("router_intake_processing_latency_p95", lambda v: v >= 1900)
    router.wait_value(inflight, lambda v: v == 0, subject=SUBJECT)
    assert router.value(events, event_type="backpressure_warning") >= 1
    assert router.value(active) == 0
    assert router.value(triggered) == 0

    # Wave 2: p95 is still above 1000 ms, and three more in flight -> 2 of 3 -> active.
    asyncio.run(publish_requests(nats_server.url, "slow-4", "slow-5", "slow-6"))
    router.wait_value(active, lambda v: v == 1, subject=SUBJECT)
    assert router.value(events, event_type="backpressure_active") == 1
    assert router.value(triggered, trigger="latency_overload") == 1
    assert router.value(triggered, trigger="inflight_overload") == 1
    assert router.value(triggered, trigger="queue_overload") == 0

    router.wait_value("router_jetstream_processed_success_total", lambda v: v == 6)
    router.wait_value(active, lambda v: v == 0, subject=SUBJECT)
    assert router.value(events, event_type="recovery") >= 1
    assert router.value("router_intake_backpressure_rejections_total") == 0
    histogram = "router_intake_processing_latency_seconds"
    assert router.value(f"{histogram}_count", subject=SUBJECT, status="success") == 6
    assert router.value(f"{histogram}_sum", status="success") >= 6 * 1.9
    assert router.value(f"{histogram}_bucket", status="success", le="1.0") == 0
    assert router.value(f"{histogram}_bucket", status="success", le="+Inf") == 6
