"""POST /decide and usage events in-process: the aiohttp app of a router that never connected, so
every answer is given without NATS and every usage event lands in the pending queue."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from router.backpressure import ACTIVE, Backpressure
from router.config import Config
from router.connection import Connection
from router.faults import FaultHook
from router.http import make_app
from router.intake import Decider
from router.intake_http import HttpIntake, retry_after
from router.metrics import NATS_REASONS, Metrics
from router.usage import UsageEmitter, usage_event

USAGE = "beamline.usage.v1.metered"
DECIDE = "beamline.router.v1.decide"


class Parts:
    """A router's HTTP side without its NATS loops: config, metrics, connection, backpressure."""

    def __init__(self, **settings: Any) -> None:
        self.config = Config(**settings)
        self.metrics = Metrics(self.config)
        self.conn = Connection(self.config, self.metrics, FaultHook())
        self.backpressure = Backpressure(self.config, self.metrics)
        decider = Decider(self.config, self.metrics)
        usage = UsageEmitter(self.config, self.conn)
        intake = HttpIntake(self.config, self.metrics, decider, self.backpressure, usage)
        self.app = make_app(self.metrics, self.conn, FaultHook(), decide=intake.handle)

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples named `name` whose labels include `labels`."""
        return sum(
            s.value
            for family in self.metrics.registry.collect()
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def queued(self) -> list[dict[str, Any]]:
        return [json.loads(op.payload) for op in self.conn.queue]


def run(parts: Parts, scenario: Callable[[TestClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with TestClient(TestServer(parts.app)) as client:
            await scenario(client)

    asyncio.run(main())


def body(request_id: str = "r-1", tenant: str | None = "tenant-a", **extra: Any) -> bytes:
    doc: dict[str, Any] = {"version": "1", "request_id": request_id, "task": {"type": "chat"}}
    if tenant is not None:
        doc["tenant_id"] = tenant
    doc.update(extra)
    return json.dumps(doc).encode()


def test_a_valid_request_is_decided_without_nats_and_its_usage_event_queued() -> None:
    parts = Parts()

    async def scenario(client: TestClient) -> None:
        resp = await client.post("/decide", data=body(tenant=None), headers={"tenant_id": "t-h"})
        assert resp.status == 200 and resp.content_type == "application/json"
        doc = await resp.json()
        assert doc["ok"] is True and doc["context"] == {"request_id": "r-1"}
        assert doc["decision"]["provider_id"] in ("provider-a", "provider-b")
        (event,) = parts.queued()
        assert set(event) == {"request_id", "tenant_id", "provider_id", "decided_at", "source"}
        assert event["request_id"] == "r-1" and event["tenant_id"] == "t-h"
        assert event["provider_id"] == doc["decision"]["provider_id"]
        assert event["source"] == "http" and isinstance(event["decided_at"], int)
        resp = await client.post("/decide", data=body("r-2"), headers={"trace_id": "tr-9"})
        assert (await resp.json())["context"] == {"request_id": "r-2", "trace_id": "tr-9"}

    run(parts, scenario)
    assert [op.subject for op in parts.conn.queue] == [USAGE, USAGE]
    assert parts.conn.queue[0].headers == {"Nats-Msg-Id": "usage-r-1"}
    assert parts.value("router_nats_pending_operations_count") == 2
    failures = {"reason": "not_connected", "subject": USAGE, "stream": "core", "source": "publish"}
    assert parts.value("router_nats_publish_failures_total", **failures) == 2
    assert parts.value("router_http_decide_requests_total", status="success") == 2
    # The first request had no trace_id header, the second no tenant_id header.
    assert parts.value("ctx_missing_headers_total") == 2
    assert parts.value("router_jetstream_processed_success_total") == 0


def test_invalid_requests_answer_400_with_the_intake_error_code() -> None:
    parts = Parts(max_payload_bytes=200)
    cases = [
        (b"{not json", "schema_validation_failed"),
        (body(version="0"), "version_unsupported"),
        (body(tenant=None), "schema_validation_failed"),
        (body(task={}), "schema_validation_failed"),
        (body(padding="x" * 300), "schema_validation_failed"),
    ]

    async def scenario(client: TestClient) -> None:
        for data, code in cases:
            resp = await client.post("/decide", data=data)
            assert resp.status == 400, data
            doc = await resp.json()
            assert doc["ok"] is False and doc["error"]["code"] == "invalid_request"
            assert doc["error"]["intake_error_code"] == code, data

    run(parts, scenario)
    assert not parts.conn.queue
    assert parts.value("router_http_decide_requests_total", status="invalid") == 5
    errors = "router_intake_validation_errors_total"
    schema = {"error_code": "schema_validation_failed", "subject": DECIDE}
    assert parts.value(errors, **schema, tenant_id="unknown") == 3  # no JSON, no tenant, too large
    assert parts.value(errors, **schema, tenant_id="other") == 1  # no task.type
    version = {"error_code": "version_unsupported", "subject": DECIDE}
    assert parts.value(errors, **version, tenant_id="other") == 1


def test_a_tenant_outside_the_allowlist_answers_403() -> None:
    parts = Parts(tenant_allowlist=["tenant-a"])

    async def scenario(client: TestClient) -> None:
        resp = await client.post("/decide", data=body("evil-1", "tenant-evil"))
        assert resp.status == 403
        doc = await resp.json()
        assert doc["error"]["intake_error_code"] == "tenant_forbidden"
        assert doc["error"]["message"] == "tenant_id not in allowlist"
        assert doc["context"] == {"request_id": "evil-1"}
        assert (await client.post("/decide", data=body("ok-1", "tenant-a"))).status == 200

    run(parts, scenario)
    assert [e["request_id"] for e in parts.queued()] == ["ok-1"]
    assert parts.value("router_decide_tenant_rejected_total", tenant_id="other") == 1
    assert parts.value("router_http_decide_requests_total", status="rejected") == 1


def test_active_backpressure_answers_503_with_retry_after() -> None:
    parts = Parts(bp_retry_after=2.5)
    parts.backpressure.status = ACTIVE

    async def scenario(client: TestClient) -> None:
        resp = await client.post("/decide", data=body())
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "3"
        doc = await resp.json()
        assert doc["ok"] is False and doc["error"]["code"] == "backpressure_active"
        assert doc["error"]["details"] == {"retry_after_seconds": 3}

    run(parts, scenario)
    assert not parts.conn.queue
    rejections = "router_intake_backpressure_rejections_total"
    assert parts.value(rejections, subject=DECIDE, reason="backpressure_active") == 1
    assert parts.value("router_http_decide_requests_total", status="backpressure") == 1


def test_only_post_is_served() -> None:
    async def scenario(client: TestClient) -> None:
        assert (await client.get("/decide")).status == 405

    run(Parts(), scenario)


def test_usage_events_off_publishes_nothing_and_creates_no_usage_series() -> None:
    parts = Parts(usage_events=False)

    async def scenario(client: TestClient) -> None:
        assert (await client.post("/decide", data=body())).status == 200

    run(parts, scenario)
    assert not parts.conn.queue
    samples = parts.metrics.registry.collect()
    subjects = {
        s.labels.get("subject")
        for family in samples
        if family.name == "router_nats_publish_failures"
        for s in family.samples
    }
    assert USAGE not in subjects and f"{DECIDE}.reply" in subjects


def test_usage_failure_series_are_preinitialised_for_every_reason() -> None:
    parts = Parts()
    labels = {"subject": USAGE, "stream": "core", "source": "publish"}
    for reason in NATS_REASONS:
        got = parts.metrics.registry.get_sample_value(
            "router_nats_publish_failures_total", {"reason": reason, **labels}
        )
        assert got == 0.0, reason
    for status in ("success", "invalid", "rejected", "backpressure", "error"):
        assert (
            parts.metrics.registry.get_sample_value(
                "router_http_decide_requests_total", {"status": status}
            )
            == 0.0
        )


def test_usage_event_document_and_retry_after_rounding() -> None:
    from router.decide import DecideRequest

    request = DecideRequest("r", "t", None, "chat", {})
    assert json.loads(usage_event(request, "p", "jetstream", decided_at_ms=5)) == {
        "request_id": "r",
        "tenant_id": "t",
        "provider_id": "p",
        "decided_at": 5,
        "source": "jetstream",
    }
    assert [retry_after(s) for s in (30.0, 0.1, 0.0, -1.0)] == ["30", "1", "0", "0"]


class FakeMsg:
    """Enough of a JetStream message for the consumer: no metadata means delivery 1."""

    def __init__(self, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.data = data
        self.headers = headers
        self.subject = DECIDE
        self.reply = "$JS.ACK.x"

    @property
    def metadata(self) -> Any:
        raise ValueError("no metadata")


def test_the_jetstream_path_queues_the_reply_then_the_usage_event_of_a_decision() -> None:
    from router.consumer import DecideConsumer

    parts = Parts(tenant_allowlist=["tenant-a"])
    decider = Decider(parts.config, parts.metrics)
    usage = UsageEmitter(parts.config, parts.conn)
    consumer = DecideConsumer(
        parts.config, parts.metrics, parts.conn, parts.backpressure, decider, usage
    )

    async def scenario() -> None:
        for msg in (FakeMsg(body("js-1")), FakeMsg(b"{bad"), FakeMsg(body("js-2", "tenant-x"))):
            await consumer.handle(msg)  # type: ignore[arg-type]

    asyncio.run(scenario())
    reply = f"{DECIDE}.reply"
    # Three replies (decision, invalid, forbidden), one usage event right after the decision.
    assert [op.subject for op in parts.conn.queue] == [reply, USAGE, reply, reply]
    event = json.loads(parts.conn.queue[1].payload)
    assert event["request_id"] == "js-1" and event["source"] == "jetstream"
    assert parts.value("router_jetstream_processed_success_total") == 1
    assert parts.value("router_http_decide_requests_total") == 0
