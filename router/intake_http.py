"""Synchronous decide intake: POST /decide on the metrics port, like the original router's gRPC
path. A decision needs no NATS, so this answers while NATS is unreachable; its usage events are
then what the pending-operations queue holds (catalogue §6.8).

    POST /decide   body: DecideRequest JSON; headers tenant_id / trace_id / version as on NATS
      200 DecideResponse            decided (usage event published, queued or dropped)
      400 ErrorResponse             invalid (intake_error_code schema_validation_failed, ...)
      403 ErrorResponse             tenant not in the allowlist (intake_error_code tenant_forbidden)
      503 ErrorResponse + Retry-After (seconds, --bp-retry-after rounded up): backpressure active
      500 ErrorResponse             a router bug (code internal)
"""

from __future__ import annotations

import math

import structlog
from aiohttp import web

from router.backpressure import Backpressure
from router.config import Config
from router.decide import error_response
from router.intake import INVALID, REJECTED, SUCCESS, Decider
from router.metrics import HTTP_DECIDE_STATUSES, Metrics
from router.usage import UsageEmitter

log = structlog.get_logger(component="router.intake_http")

HTTP_STATUS = {SUCCESS: 200, INVALID: 400, REJECTED: 403}
JSON = "application/json"


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, or its first `limit + 1` bytes: enough for validation to call it too large,
    without aiohttp's own size limit turning it into a 413 the JetStream path never gives."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


def retry_after(seconds: float) -> str:
    """Retry-After is whole seconds (RFC 9110); round up so a client never comes back early."""
    return str(max(0, math.ceil(seconds)))


class HttpIntake:
    """The POST /decide handler: backpressure gate, the shared Decider, usage event."""

    def __init__(
        self,
        config: Config,
        metrics: Metrics,
        decider: Decider,
        backpressure: Backpressure,
        usage: UsageEmitter,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.decider = decider
        self.backpressure = backpressure
        self.usage = usage
        self._requests = {s: metrics.http_decide_requests.labels(s) for s in HTTP_DECIDE_STATUSES}

    async def handle(self, request: web.Request) -> web.Response:
        try:
            status, response = await self._decide(request)
        except Exception:
            log.exception("http_decide_crashed")
            body = error_response("internal", "internal error", None)
            status, response = "error", web.Response(body=body, status=500, content_type=JSON)
        self._requests[status].inc()
        return response

    async def _decide(self, request: web.Request) -> tuple[str, web.Response]:
        c = self.config
        if self.backpressure.active:
            # Same gate and counter as the JetStream path; the client retries instead of a NAK.
            self.metrics.backpressure_rejections.labels(c.subject, "backpressure_active").inc()
            wait = retry_after(c.bp_retry_after)
            body = error_response(
                "backpressure_active",
                f"backpressure active, retry after {wait} s",
                None,
                details={"retry_after_seconds": int(wait)},
            )
            headers = {"Retry-After": wait}
            response = web.Response(body=body, status=503, content_type=JSON, headers=headers)
            return "backpressure", response
        data = await read_limited(request, c.max_payload_bytes)
        outcome = self.decider.decide(data, dict(request.headers), source="http")
        if outcome.status == SUCCESS:
            assert outcome.request is not None and outcome.provider_id is not None
            await self.usage.emit(outcome.request, outcome.provider_id, "http")
        response = web.Response(
            body=outcome.body, status=HTTP_STATUS[outcome.status], content_type=JSON
        )
        return outcome.status, response
