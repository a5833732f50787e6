"""The decide steps both intakes share (catalogue §6.4): header check, validation, tenant allowlist,
provider pick, and the intake metrics they count. One implementation, so a request gets the same
answer and the same counters whether it came over JetStream or POST /decide; what the transport
does with the answer (reply + ACK/NAK, an HTTP status) stays with each intake."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from router.config import Config
from router.decide import (
    DecideRequest,
    Invalid,
    ProviderPolicy,
    decision_response,
    error_response,
    header,
    parse_request,
)
from router.metrics import TENANT_REJECT_REASON, Metrics

log = structlog.get_logger(component="router.intake")

SUCCESS, INVALID, REJECTED = "success", "invalid", "rejected"
TENANT_FORBIDDEN = "tenant_forbidden"


@dataclass(frozen=True)
class Outcome:
    """One decide request's result. `status` is the metric label (success, invalid, rejected);
    `body` the DecideResponse or ErrorResponse; `request` is None only when invalid."""

    status: str
    body: bytes
    request: DecideRequest | None = None
    provider_id: str | None = None
    intake_error_code: str | None = None


class Decider:
    """Validates and decides; counts ctx_missing_headers, validation errors, tenant rejections."""

    def __init__(self, config: Config, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.policy = ProviderPolicy(config.providers)
        self.allowlist = frozenset(config.tenant_allowlist)

    def decide(self, data: bytes, headers: dict[str, str] | None, *, source: str) -> Outcome:
        c = self.config
        m = self.metrics
        if header(headers, "trace_id") is None or header(headers, "tenant_id") is None:
            m.ctx_missing_headers.inc()
        parsed = parse_request(data, headers, c.max_payload_bytes)
        if isinstance(parsed, Invalid):
            m.validation_errors.labels(
                parsed.code, c.subject, m.tenant_label(parsed.tenant_id)
            ).inc()
            log.info(
                "decide_invalid",
                code=parsed.code,
                detail=parsed.message,
                request_id=parsed.request_id,
                source=source,
            )
            body = error_response(
                "invalid_request", parsed.message, parsed.request_id, intake_error_code=parsed.code
            )
            return Outcome(INVALID, body, intake_error_code=parsed.code)
        if self.allowlist and parsed.tenant_id not in self.allowlist:
            m.tenant_rejected.labels(TENANT_REJECT_REASON, m.tenant_label(parsed.tenant_id)).inc()
            body = error_response(
                "invalid_request",
                TENANT_REJECT_REASON,
                parsed.request_id,
                intake_error_code=TENANT_FORBIDDEN,
            )
            return Outcome(REJECTED, body, parsed, intake_error_code=TENANT_FORBIDDEN)
        decision = self.policy.pick(parsed)
        body = decision_response(parsed, decision)
        return Outcome(SUCCESS, body, parsed, provider_id=str(decision["provider_id"]))
