"""Publishing with the offline queue (catalogue §6.8): core publishes (replies, usage events) and
JetStream publishes confirmed by a PubAck (DLQ records). While disconnected a publish is counted
as failed (`not_connected`) and queued, unless fail-open; the queue is capped (oldest dropped,
counted) and flushed once, FIFO, on reconnect."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import structlog

from router.config import Config
from router.faults import FaultHook
from router.metrics import CORE_STREAM_LABEL, Metrics
from router.reasons import error_type_of, reason_of
from router.supervisor import Supervisor

log = structlog.get_logger(component="router.publisher")

SENT, QUEUED, FAILED = "sent", "queued", "failed"


@dataclass
class PendingOp:
    """A publish waiting for the connection to come back."""

    kind: str  # "publish" or "publish_with_ack"
    subject: str
    payload: bytes
    headers: dict[str, str] | None
    label_subject: str


class Publisher:
    """Attempts publishes on the current connection; owns the disconnected-publish queue."""

    def __init__(
        self, config: Config, metrics: Metrics, faults: FaultHook, link: Supervisor
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.faults = faults
        self.link = link
        self.queue: deque[PendingOp] = deque()

    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        label_subject: str,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Core publish; while disconnected it is counted as failed and queued (unless fail-open).

        Returns "sent", "queued" or "failed".
        """
        return await self._submit(PendingOp("publish", subject, payload, headers, label_subject))

    async def publish_with_ack(
        self, subject: str, payload: bytes, *, headers: dict[str, str] | None = None
    ) -> str:
        """JetStream publish confirmed by a PubAck; queued like `publish` while disconnected."""
        op = PendingOp("publish_with_ack", subject, payload, headers, subject)
        return await self._submit(op)

    async def _submit(self, op: PendingOp) -> str:
        reason = await self._attempt(op, retry_count="0")
        if reason is None:
            return SENT
        if not self.link.connected:
            if not self.link.fail_open:
                self._enqueue(op)
                return QUEUED
            log.warning("nats_publish_dropped_fail_open", kind=op.kind, subject=op.label_subject)
        return FAILED

    async def _attempt(self, op: PendingOp, *, retry_count: str) -> str | None:
        """One try on the wire; None on success, else the failure's (counted) reason."""
        m = self.metrics
        started = time.monotonic()
        try:
            await self.faults.apply(op.kind, self.config.publish_timeout)
            nc, js = self.link.client(), self.link.jetstream()
            if op.kind == "publish":
                await nc.publish(op.subject, op.payload, headers=op.headers)
            else:
                await js.publish(
                    op.subject,
                    op.payload,
                    timeout=self.config.publish_timeout,
                    headers=op.headers,
                )
        except Exception as exc:
            reason = reason_of(exc)
            m.publish_latency.set(time.monotonic() - started)
            m.publish_attempts.labels("error", retry_count).inc()
            if reason != "not_connected":
                m.publish_errors.labels(error_type_of(reason)).inc()
            self._count_failure(op, reason)
            return reason
        m.publish_latency.set(time.monotonic() - started)
        m.publish_attempts.labels("success", retry_count).inc()
        if op.kind == "publish":
            m.publish_total.inc()
        else:
            m.publish_with_ack_total.inc()
        return None

    def _count_failure(self, op: PendingOp, reason: str) -> None:
        c = self.config
        if op.kind == "publish":
            self.metrics.publish_failures.labels(
                reason, op.label_subject, CORE_STREAM_LABEL, "publish"
            ).inc()
            log.warning("NATS_PUBLISH_ERROR", reason=reason, subject=op.label_subject)
        else:
            self.metrics.publish_with_ack_failures.labels(
                reason, c.dlq_subject, c.dlq_stream, "publish_with_ack"
            ).inc()
            log.warning("NATS_PUBLISH_WITH_ACK_ERROR", reason=reason, subject=op.subject)

    def _enqueue(self, op: PendingOp) -> None:
        """Queue `op`; at the cap the oldest is dropped and counted (catalogue §6.8)."""
        if len(self.queue) >= self.config.max_pending_operations:
            self.queue.popleft()
            self.metrics.pending_dropped.inc()
            log.warning("NATS_QUEUE_FULL", cap=self.config.max_pending_operations)
        self.queue.append(op)
        self.metrics.pending_operations.set(len(self.queue))
        log.debug("NATS_PUBLISH_QUEUED", kind=op.kind, depth=len(self.queue))

    async def flush_pending(self) -> None:
        """Retry every queued publish once, FIFO; failures are counted, not re-queued."""
        if not self.queue:
            return
        m = self.metrics
        total = len(self.queue)
        ok = failed = 0
        log.info("NATS_RETRY_PENDING", queued=total)
        while self.queue and self.link.connected:
            op = self.queue.popleft()
            m.pending_operations.set(len(self.queue))
            m.pending_retry.inc()
            if await self._attempt(op, retry_count="1") is None:
                m.pending_retry_success.inc()
                ok += 1
            else:
                m.pending_retry_failed.inc()
                failed += 1
        m.pending_operations.set(len(self.queue))
        log.info("NATS_RETRY_COMPLETE", succeeded=ok, failed=failed, left=len(self.queue))
