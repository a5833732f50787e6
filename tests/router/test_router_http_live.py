"""Live POST /decide and usage events on a real nats-server: answers with and without NATS, one
usage event per successful decision, and during an outage the queue they fill (NATS-003 publish
failures, NATS-007 pending queue and its cap, JS-004 queue growth), flushed on reconnect or
dropped in fail-open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import nats
import pytest
from nats.aio.subscription import Subscription

from tests.conftest import NatsServer
from tests.router.conftest import RouterProcess, wait_for
from tests.router.test_router_live import REPLY, SUBJECT, connect, next_json, request

StartRouter = Callable[..., RouterProcess]

pytestmark = pytest.mark.live

USAGE = "beamline.usage.v1.metered"
USAGE_FAILURES = {"subject": USAGE, "stream": "core", "source": "publish"}
EVENT_KEYS = {"request_id", "tenant_id", "provider_id", "decided_at", "source"}


async def collect(sub: Subscription, count: int) -> list[dict[str, Any]]:
    return [await next_json(sub) for _ in range(count)]


async def assert_silent(sub: Subscription, seconds: float = 1.0) -> None:
    with pytest.raises(nats.errors.TimeoutError):
        msg = await sub.next_msg(timeout=seconds)
        raise AssertionError(f"unexpected message: {msg.data!r}")


def test_http_decide_answers_200_400_403_and_each_decision_emits_one_usage_event(
    nats_server: NatsServer, start_router: StartRouter
) -> None:
    router = start_router(nats_server.url, "--tenant-allowlist", "tenant-a,tenant-b")

    async def scenario() -> list[dict[str, Any]]:
        nc = await connect(nats_server.url)
        usage = await nc.subscribe(USAGE)
        replies = await nc.subscribe(REPLY)
        await nc.flush()

        def post(body: bytes, **headers: str) -> Any:
            return asyncio.to_thread(router.decide, body, headers)

        status, headers, doc = await post(request("h-1"))
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert doc["ok"] is True and doc["context"] == {"request_id": "h-1"}
        provider = doc["decision"]["provider_id"]
        assert provider in ("provider-a", "provider-b")
        body = json.dumps({"version": "1", "request_id": "h-2", "task": {"type": "chat"}})
        status, _, doc = await post(body.encode(), tenant_id="tenant-b", trace_id="tr-2")
        assert status == 200 and doc["context"] == {"request_id": "h-2", "trace_id": "tr-2"}

        status, _, doc = await post(b"{not json")
        assert status == 400 and doc["error"]["intake_error_code"] == "schema_validation_failed"
        status, _, doc = await post(request("h-old", version="0"))
        assert status == 400 and doc["error"]["intake_error_code"] == "version_unsupported"
        status, _, doc = await post(request("h-evil", "tenant-evil"))
        assert status == 403 and doc["error"]["intake_error_code"] == "tenant_forbidden"
        assert doc["context"] == {"request_id": "h-evil"}

        await nc.jetstream().publish(SUBJECT, request("js-1"))
        assert (await next_json(replies))["context"]["request_id"] == "js-1"
        events = await collect(usage, 3)
        await assert_silent(usage)  # nothing for the invalid and forbidden requests
        await nc.close()
        assert events[0]["provider_id"] == provider
        return events

    events = asyncio.run(scenario())
    by_id = {e["request_id"]: e for e in events}
    assert set(by_id) == {"h-1", "h-2", "js-1"}
    assert all(set(e) == EVENT_KEYS and isinstance(e["decided_at"], int) for e in events)
    assert [by_id[i]["source"] for i in ("h-1", "h-2", "js-1")] == ["http", "http", "jetstream"]
    assert by_id["h-2"]["tenant_id"] == "tenant-b"  # header over payload, as on NATS

    requests = "router_http_decide_requests_total"
    assert router.value(requests, status="success") == 2
    assert router.value(requests, status="invalid") == 2
    assert router.value(requests, status="rejected") == 1
    assert router.value("router_intake_validation_errors_total", subject=SUBJECT) == 2
    assert router.value("router_decide_tenant_rejected_total", tenant_id="other") == 1
    assert router.value("router_jetstream_processed_success_total") == 1
    assert router.value("router_nats_publish_total") >= 4  # three usage events, one reply
    assert router.value("router_nats_publish_failures_total") == 0


def test_http_decide_under_active_backpressure_answers_503_with_retry_after(
    nats_server: NatsServer, start_router: StartRouter
) -> None:
    router = start_router(
        nats_server.url,
        "--bp-queue-threshold=-1",
        "--bp-latency-threshold-ms=-1",
        "--bp-retry-after",
        "12.5",
    )
    router.wait_value("router_intake_backpressure_active", lambda v: v == 1)
    status, headers, doc = router.decide(request("bp-1"))
    assert status == 503 and headers["Retry-After"] == "13"
    assert doc["ok"] is False and doc["error"]["code"] == "backpressure_active"
    assert doc["error"]["details"] == {"retry_after_seconds": 13}
    assert router.value("router_http_decide_requests_total", status="backpressure") == 1
    assert (
        router.value("router_intake_backpressure_rejections_total", reason="backpressure_active")
        == 1
    )
    assert router.value("router_nats_pending_operations_count") == 0


def test_nats_outage_http_decides_queue_usage_events_up_to_the_cap_and_the_flush_delivers_them(
    nats_server: NatsServer, start_router: StartRouter
) -> None:
    router = start_router(
        nats_server.url,
        "--enable-fault-hook",
        "--max-reconnect-attempts",
        "50",
        "--max-pending-operations",
        "3",
    )
    nats_server.stop()
    router.wait_value("router_nats_connection_lost_total", lambda v: v == 1)
    # Keep the router out after the restart until the test's usage subscription is in place.
    router.http(
        "POST", "/faults", {"op": "connect", "mode": "error", "reason": "connection_refused"}
    )

    for i in range(1, 6):
        status, _, doc = router.decide(request(f"out-{i}"))
        assert status == 200 and doc["ok"] is True, doc  # decided without NATS
        # Each answer comes after its usage publish was tried: the queue is already updated.
        assert router.value("router_nats_pending_operations_count") == min(i, 3)
        assert router.value("router_nats_pending_operations_dropped_total") == max(0, i - 3)
        failures = router.value(
            "router_nats_publish_failures_total", reason="not_connected", **USAGE_FAILURES
        )
        assert failures == i
    assert router.value("router_nats_publish_failures_total") == 5  # usage events only
    assert router.value("router_http_decide_requests_total", status="success") == 5
    assert router.http("GET", "/healthz")[1]["nats"]["pending_operations"] == 3
    assert router.connection_state() in ("reconnecting", "disconnected")

    async def restart_and_collect() -> list[dict[str, Any]]:
        await nats_server.astart()
        nc = await connect(nats_server.url)
        usage = await nc.subscribe(USAGE)
        await nc.flush()
        await asyncio.to_thread(router.http, "DELETE", "/faults/connect")
        events = await collect(usage, 3)
        await assert_silent(usage)
        await nc.close()
        return events

    events = asyncio.run(restart_and_collect())
    # FIFO flush of what the cap kept: the two oldest were dropped.
    assert [e["request_id"] for e in events] == ["out-3", "out-4", "out-5"]
    assert {e["source"] for e in events} == {"http"}
    router.wait_value("router_nats_connection_restored_total", lambda v: v == 1)
    assert router.value("router_nats_pending_operations_count") == 0
    assert router.value("router_nats_pending_operations_retry_total") == 3
    assert router.value("router_nats_pending_operations_retry_success_total") == 3
    assert router.value("router_nats_pending_operations_retry_failed_total") == 0
    assert router.value("router_nats_pending_operations_dropped_total") == 2
    flushed = router.value("router_nats_publish_attempts_total", status="success", retry_count="1")
    assert flushed == 3


def test_in_fail_open_mode_usage_events_are_dropped_not_queued(
    nats_server: NatsServer, start_router: StartRouter
) -> None:
    router = start_router(nats_server.url, "--max-reconnect-attempts", "2")
    nats_server.stop()
    router.wait_value("router_nats_reconnection_exhausted_total", lambda v: v == 1)
    wait_for(lambda: router.http("GET", "/healthz")[1]["nats"]["fail_open"], what="fail-open")

    for i in range(1, 4):
        assert router.decide(request(f"open-{i}"))[0] == 200
    failures = router.value(
        "router_nats_publish_failures_total", reason="not_connected", **USAGE_FAILURES
    )
    assert failures == 3  # counted as failed ...
    assert router.value("router_nats_pending_operations_count") == 0  # ... but not queued
    assert router.value("router_nats_pending_operations_dropped_total") == 0

    nats_server.start()
    router.wait_value("router_nats_connection_restored_total", lambda v: v == 1)
    assert router.http("GET", "/healthz")[1]["nats"]["fail_open"] is False
    assert router.value("router_nats_pending_operations_retry_total") == 0
    # Connected again: the next decision's usage event is sent at once.
    sent = router.value("router_nats_publish_total")
    assert router.decide(request("open-after"))[0] == 200
    router.wait_value("router_nats_publish_total", lambda v: v == sent + 1)
