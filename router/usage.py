"""Usage events (catalogue §6.2): one core publish to `--usage-subject` per successful decision,
from either intake. They go through the Publisher like replies, so while NATS is unreachable they
are counted as failed (`not_connected`) and queued (dropped in fail-open): this is what keeps the
pending-operations queue busy during an outage (NATS-003, NATS-007, JS-004)."""

from __future__ import annotations

import json
import time
from typing import Literal

import structlog

from router.config import Config
from router.connection import Connection
from router.decide import DecideRequest

log = structlog.get_logger(component="router.usage")

Source = Literal["jetstream", "http"]


def usage_event(
    request: DecideRequest, provider_id: str, source: Source, *, decided_at_ms: int | None = None
) -> bytes:
    """The event document: who was routed where, when (epoch ms), and by which intake."""
    decided_at = int(time.time() * 1000) if decided_at_ms is None else decided_at_ms
    return json.dumps(
        {
            "request_id": request.request_id,
            "tenant_id": request.tenant_id,
            "provider_id": provider_id,
            "decided_at": decided_at,
            "source": source,
        }
    ).encode()


class UsageEmitter:
    """Publishes usage events, or nothing when `--usage-events` is off."""

    def __init__(self, config: Config, conn: Connection) -> None:
        self.enabled = config.usage_events
        self.subject = config.usage_subject
        self.conn = conn

    async def emit(self, request: DecideRequest, provider_id: str, source: Source) -> str | None:
        """Publish one event: the Publisher's outcome ("sent", "queued", "failed"), None when
        disabled. Never raises (nor does the Publisher): metering must not fail a decision."""
        if not self.enabled:
            return None
        payload = usage_event(request, provider_id, source)
        # A redelivered request is decided (and metered) again; the id lets a stream dedupe.
        headers = {"Nats-Msg-Id": f"usage-{request.request_id}"}
        outcome = await self.conn.publish(
            self.subject, payload, label_subject=self.subject, headers=headers
        )
        log.debug("usage_event", request_id=request.request_id, source=source, outcome=outcome)
        return outcome
