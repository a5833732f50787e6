"""Prometheus metric families of the router; names and labels per deploy/metrics-contract.yaml."""

from __future__ import annotations

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from router.config import Config

# Documented NATS failure reasons (catalogue §5.5) plus no_responders and a catch-all.
NATS_REASONS: tuple[str, ...] = (
    "timeout",
    "connection_closed",
    "connection_refused",
    "auth_failed",
    "not_connected",
    "no_route",
    "stream_not_found",
    "consumer_not_found",
    "authorization",
    "no_responders",
    "other",
)
PUBLISH_ERROR_TYPES = ("timeout", "connection", "nack", "broker_error", "unknown")
LATENCY_STATUSES = ("success", "invalid", "rejected", "backpressure", "exhausted")
# Outcomes of POST /decide: 200, 400, 403, 503 and 500 (a bug, never expected).
HTTP_DECIDE_STATUSES = ("success", "invalid", "rejected", "backpressure", "error")
VALIDATION_CODES = ("schema_validation_failed", "version_unsupported")
TENANT_REJECT_REASON = "tenant_id not in allowlist"
REDELIVERY_SOURCES = {
    "tenant_validation_failed": "tenant_validation",
    "backpressure": "backpressure",
}
BP_TRIGGERS = ("queue_overload", "latency_overload", "inflight_overload")
BP_EVENTS = ("backpressure_active", "backpressure_warning", "recovery")
REDACTED = "redacted"
REPLY_TO_LABEL = "reply_to"
CORE_STREAM_LABEL = "core"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)

CONNECTION_STATE_VALUES = {"connected": 1.0, "reconnecting": 0.5, "disconnected": 0.0}


class TenantLabeler:
    """Maps tenant ids onto a bounded label vocabulary so tenant_id labels cannot explode."""

    def __init__(self, known: list[str]) -> None:
        self.known = frozenset(known)

    def __call__(self, tenant_id: str | None) -> str:
        if not tenant_id:
            return "unknown"
        return tenant_id if tenant_id in self.known else "other"

    def values(self) -> list[str]:
        return sorted(self.known) + ["other", "unknown"]


class Metrics:
    """All router metrics in one registry; counters alerts use are created at 0 up front."""

    def __init__(self, config: Config) -> None:
        prometheus_client.disable_created_metrics()
        self.config = config
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.tenant_label = TenantLabeler(config.tenant_allowlist + config.label_tenants)
        r = self.registry

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=r)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        # NATS connection
        self.connection_status = gauge(
            "router_nats_connection_status",
            "Connection state (1 connected, 0.5 reconnecting, 0 disconnected); one series.",
            ("state",),
        )
        self.connection_established = counter(
            "router_nats_connection_established", "Initial connection succeeded."
        )
        self.connection_lost = counter(
            "router_nats_connection_lost", "Established connection lost."
        )
        self.connection_restored = counter(
            "router_nats_connection_restored", "Reconnect after a loss succeeded."
        )
        self.connect_failures = counter(
            "router_nats_connect_failures",
            "Start-up connect attempt failed.",
            ("reason", "cluster", "source"),
        )
        self.reconnect_attempts = counter(
            "router_nats_reconnect_attempts", "Reconnect attempts after a loss."
        )
        self.reconnect_failures = counter(
            "router_nats_reconnect_failures",
            "Reconnect attempt failed.",
            ("reason", "cluster", "attempt"),
        )
        self.reconnection_exhausted = counter(
            "router_nats_reconnection_exhausted",
            "Reconnect attempts exhausted; fail-open mode entered.",
        )
        self.health_checks = counter(
            "router_nats_health_check", "Periodic connection round-trip check.", ("status",)
        )
        # NATS operations
        self.publish_total = counter("router_nats_publish", "Core publish succeeded.")
        self.publish_failures = counter(
            "router_nats_publish_failures",
            "Core publish failed.",
            ("reason", "subject", "stream", "source"),
        )
        self.publish_attempts = counter(
            "router_nats_publish_attempts", "Every publish attempt.", ("status", "retry_count")
        )
        self.publish_errors = counter(
            "router_nats_publish_errors", "Publish error while connected.", ("error_type",)
        )
        self.publish_latency = gauge(
            "router_nats_publish_latency_seconds", "Duration of the last publish attempt."
        )
        self.publish_with_ack_total = counter(
            "router_nats_publish_with_ack", "JetStream publish confirmed by a PubAck."
        )
        self.publish_with_ack_failures = counter(
            "router_nats_publish_with_ack_failures",
            "JetStream publish failed.",
            ("reason", "subject", "stream", "source"),
        )
        self.ack_total = counter("router_nats_ack", "ACK/TERM confirmed by the server.")
        self.ack_failures = counter(
            "router_nats_ack_failures",
            "ACK/TERM not confirmed.",
            ("reason", "subject", "stream", "consumer"),
        )
        self.nak_total = counter("router_nats_nak", "NAK confirmed by the server.")
        self.nak_failures = counter(
            "router_nats_nak_failures", "NAK not confirmed.", ("reason", "subject", "stream")
        )
        self.subscribe_total = counter("router_nats_subscribe", "Bound to the durable consumer.")
        self.subscribe_failures = counter(
            "router_nats_subscribe_failures",
            "Binding to the consumer failed.",
            ("reason", "subject", "stream", "consumer"),
        )
        self.pending_operations = gauge(
            "router_nats_pending_operations_count", "Publishes queued while disconnected."
        )
        self.pending_dropped = counter(
            "router_nats_pending_operations_dropped", "Queued publish dropped (queue full)."
        )
        self.pending_retry = counter(
            "router_nats_pending_operations_retry", "Queued operations retried on reconnect."
        )
        self.pending_retry_success = counter(
            "router_nats_pending_operations_retry_success", "Flushed operations that succeeded."
        )
        self.pending_retry_failed = counter(
            "router_nats_pending_operations_retry_failed", "Flushed operations that failed."
        )
        # JetStream
        self.js_ack_total = counter("router_jetstream_ack", "ACK or TERM decided by the router.")
        self.redelivery = counter(
            "router_jetstream_redelivery",
            "Redelivery requested by the router (NAK with backoff).",
            (
                "assignment_id",
                "request_id",
                "msg_id",
                "reason",
                "source",
                "delivery_count",
                "tenant_id",
            ),
        )
        self.redelivery_decision = counter(
            "router_jetstream_redelivery_decision",
            "Final disposition per delivery.",
            ("decision", "delivery_count"),
        )
        self.redelivery_backoff_ms = gauge(
            "router_jetstream_redelivery_backoff_ms",
            "NAK delay used for a delivery count.",
            ("delivery_count", "base_backoff_ms"),
        )
        self.maxdeliver_exhausted = counter(
            "router_jetstream_maxdeliver_exhausted",
            "Message failed at max_deliver: dead-lettered and terminated.",
            (
                "assignment_id",
                "request_id",
                "msg_id",
                "delivery_count",
                "max_deliver",
                "reason",
                "tenant_id",
            ),
        )
        self.dlq_total = counter(
            "router_dlq",
            "DLQ record handed to publish_with_ack.",
            ("assignment_id", "reason", "tenant_id", "source", "msg_id", "request_id"),
        )
        self.pending_messages = gauge(
            "router_jetstream_pending_messages", "Consumer num_pending.", ("subject", "consumer")
        )
        self.ack_pending_messages = gauge(
            "router_jetstream_ack_pending_messages",
            "Consumer num_ack_pending.",
            ("subject", "consumer"),
        )
        self.delivered = counter(
            "router_jetstream_delivered_messages", "Messages fetched.", ("subject", "consumer")
        )
        self.redelivered = counter(
            "router_jetstream_redelivered_messages",
            "Deliveries with num_delivered > 1.",
            ("subject", "consumer"),
        )
        self.processed_success = counter(
            "router_jetstream_processed_success",
            "Requests answered with a decision.",
            ("subject", "consumer"),
        )
        self.jetstream_queries = counter(
            "router_intake_jetstream_query",
            "Consumer-info queries for the pending count.",
            ("method", "subject", "error"),
        )
        # Intake
        self.tenant_rejected = counter(
            "router_decide_tenant_rejected",
            "Decide request rejected by the tenant allowlist.",
            ("reason", "tenant_id"),
        )
        self.validation_errors = counter(
            "router_intake_validation_errors",
            "Invalid decide request.",
            ("error_code", "subject", "tenant_id"),
        )
        self.ctx_missing_headers = counter(
            "ctx_missing_headers", "Decide request without trace_id / tenant_id headers."
        )
        self.http_decide_requests = counter(
            "router_http_decide_requests",
            "POST /decide requests by outcome (success 200, invalid 400, rejected 403, "
            "backpressure 503, error 500).",
            ("status",),
        )
        # Performance
        self.processing_latency = Histogram(
            "router_intake_processing_latency_seconds",
            "Time from fetch to the end of processing (JetStream path).",
            ("subject", "status"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.latency_p50 = gauge(
            "router_intake_processing_latency_p50", "Median processing latency (ms).", ("subject",)
        )
        self.latency_p95 = gauge(
            "router_intake_processing_latency_p95", "p95 processing latency (ms).", ("subject",)
        )
        self.latency_p99 = gauge(
            "router_intake_processing_latency_p99", "p99 processing latency (ms).", ("subject",)
        )
        self.inflight = gauge(
            "router_intake_inflight_messages", "Messages being processed.", ("subject",)
        )
        self.inflight_max = gauge(
            "router_intake_inflight_messages_max", "Configured in-flight limit.", ("subject",)
        )
        self.backpressure_active = gauge(
            "router_intake_backpressure_active", "1 while backpressure is active.", ("subject",)
        )
        self.backpressure_triggered = counter(
            "router_intake_backpressure_triggered",
            "Thresholds exceeded when backpressure turned active.",
            ("subject", "trigger"),
        )
        self.backpressure_rejections = counter(
            "router_intake_backpressure_rejections",
            "Requests rejected by the backpressure gate (NAK, or HTTP 503).",
            ("subject", "reason"),
        )
        self.backpressure_events = counter(
            "router_backpressure_events",
            "Backpressure status transitions.",
            ("subject", "event_type"),
        )
        self.backpressure_recovery = counter(
            "router_backpressure_recovery", "Transitions to a lower status.", ("subject",)
        )
        self._connection_state: str | None = None
        self._preinitialise()

    # ------------------------------------------------------------------ label helpers
    def reconnect_attempt_label(self, attempt: int) -> str:
        return str(min(max(attempt, 1), self.config.max_reconnect_attempts))

    def delivery_label(self, delivery_count: int) -> str:
        return str(min(max(delivery_count, 1), self.config.max_deliver))

    def core_publish_subjects(self) -> tuple[str, ...]:
        """The `subject` label values of core publishes: replies, and usage events when on."""
        c = self.config
        usage = (c.usage_subject,) if c.usage_events else ()
        return (c.reply_subject, REPLY_TO_LABEL, *usage)

    def set_connection_state(self, state: str) -> None:
        """Keep exactly one status series: drop the previous state's series, set the new one."""
        if state == self._connection_state:
            return
        if self._connection_state is not None:
            self.connection_status.remove(self._connection_state)
        self.connection_status.labels(state=state).set(CONNECTION_STATE_VALUES[state])
        self._connection_state = state

    @property
    def connection_state(self) -> str | None:
        return self._connection_state

    # ------------------------------------------------------------------ pre-initialisation
    def _preinitialise(self) -> None:
        c = self.config
        subj, stream, consumer = c.subject, c.stream, c.consumer
        tenants = self.tenant_label.values()
        self.set_connection_state("disconnected")
        for reason in NATS_REASONS:
            self.connect_failures.labels(reason, c.nats_cluster, "initial_connect")
            for attempt in range(1, c.max_reconnect_attempts + 1):
                self.reconnect_failures.labels(reason, c.nats_cluster, str(attempt))
            for core_subject in self.core_publish_subjects():
                self.publish_failures.labels(reason, core_subject, CORE_STREAM_LABEL, "publish")
            self.publish_with_ack_failures.labels(
                reason, c.dlq_subject, c.dlq_stream, "publish_with_ack"
            )
            self.ack_failures.labels(reason, subj, stream, consumer)
            self.nak_failures.labels(reason, subj, stream)
            self.subscribe_failures.labels(reason, subj, stream, consumer)
            self.jetstream_queries.labels("real_time", subj, reason)
        self.jetstream_queries.labels("real_time", subj, "none")
        for status in ("ok", "error"):
            self.health_checks.labels(status)
        for status in HTTP_DECIDE_STATUSES:
            self.http_decide_requests.labels(status)
        for status in ("success", "error"):
            for retry in ("0", "1"):
                self.publish_attempts.labels(status, retry)
        for error_type in PUBLISH_ERROR_TYPES:
            self.publish_errors.labels(error_type)
        for dc in range(1, c.max_deliver + 1):
            for decision in ("ack", "nak", "term"):
                self.redelivery_decision.labels(decision, str(dc))
        aid = c.assignment_id
        max_deliver = str(c.max_deliver)
        for tenant in tenants:
            for reason, source in REDELIVERY_SOURCES.items():
                for dc in range(1, c.max_deliver):
                    self.redelivery.labels(aid, REDACTED, REDACTED, reason, source, str(dc), tenant)
                self.dlq_total.labels(
                    aid, "maxdeliver_exhausted", tenant, source, REDACTED, REDACTED
                )
            self.maxdeliver_exhausted.labels(
                aid, REDACTED, REDACTED, max_deliver, max_deliver, "maxdeliver_exhausted", tenant
            )
            self.tenant_rejected.labels(TENANT_REJECT_REASON, tenant)
            for code in VALIDATION_CODES:
                self.validation_errors.labels(code, subj, tenant)
        for family in (self.delivered, self.redelivered, self.processed_success):
            family.labels(subj, consumer)
        self.pending_messages.labels(subj, consumer).set(0)
        self.ack_pending_messages.labels(subj, consumer).set(0)
        for gauge in (self.latency_p50, self.latency_p95, self.latency_p99, self.inflight):
            gauge.labels(subj).set(0)
        self.inflight_max.labels(subj).set(c.max_inflight)
        self.backpressure_active.labels(subj).set(0)
        for trigger in BP_TRIGGERS:
            self.backpressure_triggered.labels(subj, trigger)
        self.backpressure_rejections.labels(subj, "backpressure_active")
        for event in BP_EVENTS:
            self.backpressure_events.labels(subj, event)
        self.backpressure_recovery.labels(subj)
        for status in LATENCY_STATUSES:
            self.processing_latency.labels(subj, status)
        base_ms = str(int(c.nak_delay(1) * 1000))
        for dc in range(1, c.max_deliver):
            self.redelivery_backoff_ms.labels(str(dc), base_ms).set(c.nak_delay(dc) * 1000)
        self.pending_operations.set(0)
        self.publish_latency.set(0)

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)
