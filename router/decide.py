"""Decide request validation, weighted provider policy, response and DLQ documents (§6.2, §6.6)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

SUPPORTED_VERSION = "1"
REPLY_TO_HEADER = "reply-to"


@dataclass(frozen=True)
class DecideRequest:
    request_id: str
    tenant_id: str
    trace_id: str | None
    task_type: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Invalid:
    """Why a request cannot be processed; `code` is the intake error code (metric label)."""

    code: str
    message: str
    request_id: str | None = None
    tenant_id: str | None = None


def header(headers: dict[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup (headers take priority over payload fields, §6.2)."""
    if not headers:
        return None
    if name in headers:
        return headers[name]
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def parse_request(
    data: bytes, headers: dict[str, str] | None, max_payload_bytes: int
) -> DecideRequest | Invalid:
    """Validate a DecideRequest; any failure is an `Invalid` (error reply + ACK, no redelivery)."""
    if len(data) > max_payload_bytes:
        return Invalid("schema_validation_failed", f"payload exceeds {max_payload_bytes} bytes")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return Invalid("schema_validation_failed", "payload is not valid JSON")
    if not isinstance(body, dict):
        return Invalid("schema_validation_failed", "payload must be a JSON object")
    request_id = body.get("request_id")
    rid = request_id if isinstance(request_id, str) and request_id else None
    tenant = header(headers, "tenant_id") or body.get("tenant_id")
    tenant_id = tenant if isinstance(tenant, str) and tenant else None
    version = header(headers, "version") or body.get("version")
    if version is None:
        return Invalid("schema_validation_failed", "version is required", rid, tenant_id)
    if str(version) != SUPPORTED_VERSION:
        return Invalid(
            "version_unsupported", f"version {version!r} is not supported", rid, tenant_id
        )
    if rid is None:
        return Invalid("schema_validation_failed", "request_id is required", None, tenant_id)
    if tenant_id is None:
        return Invalid("schema_validation_failed", "tenant_id is required", rid, None)
    task = body.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("type"), str) or not task["type"]:
        return Invalid("schema_validation_failed", "task.type is required", rid, tenant_id)
    trace = header(headers, "trace_id") or body.get("trace_id")
    return DecideRequest(
        rid, tenant_id, trace if isinstance(trace, str) else None, task["type"], body
    )


class ProviderPolicy:
    """Weighted pick, deterministic per request_id so a redelivered request gets the same answer."""

    def __init__(self, providers: list[tuple[str, int]]) -> None:
        self.providers = [(name, weight) for name, weight in providers if weight > 0]
        self.total = sum(weight for _, weight in self.providers)

    def pick(self, request: DecideRequest) -> dict[str, Any]:
        digest = hashlib.blake2b(request.request_id.encode(), digest_size=8).digest()
        point = int.from_bytes(digest, "big") % self.total
        for index, (name, weight) in enumerate(self.providers):
            if point < weight:
                return {
                    "provider_id": name,
                    "priority": 50,
                    "expected_latency_ms": 100 + 50 * index,
                    "expected_cost": round(0.01 * (index + 1), 4),
                    "reason": "weighted",
                }
            point -= weight
        raise AssertionError("weights exhausted")  # unreachable: point < total


def decision_response(request: DecideRequest, decision: dict[str, Any]) -> bytes:
    context = {"request_id": request.request_id}
    if request.trace_id:
        context["trace_id"] = request.trace_id
    return json.dumps({"ok": True, "decision": decision, "context": context}).encode()


def error_response(
    code: str,
    message: str,
    request_id: str | None,
    *,
    intake_error_code: str | None = None,
    details: dict[str, Any] | None = None,
) -> bytes:
    """ErrorResponse of §6.2: `{"ok": false, "error": {code, message[, details]
    [, intake_error_code]}, "context": {"request_id"}}`."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    if intake_error_code:
        error["intake_error_code"] = intake_error_code
    return json.dumps({"ok": False, "error": error, "context": {"request_id": request_id}}).encode()


def dlq_record(
    *,
    original_subject: str,
    msg_id: str,
    payload: bytes,
    request_id: str | None,
    tenant_id: str | None,
    trace_id: str | None,
    delivery_count: int,
    max_deliver: int,
    last_error: dict[str, str],
    stream_seq: int,
    include_message: bool = True,
) -> bytes:
    """MaxDeliver DLQ record of catalogue §6.6, plus delivery bookkeeping for the ledger."""
    record: dict[str, Any] = {
        "original_subject": original_subject,
        "msg_id": msg_id,
        "reason": "maxdeliver_exhausted",
        "error_code": "MAXDELIVER_EXHAUSTED",
        "timestamp": int(time.time() * 1000),
        "request_id": request_id,
        "delivery_count": delivery_count,
        "max_deliver": max_deliver,
        "stream_seq": stream_seq,
        "last_error": last_error,
    }
    if trace_id:
        record["trace_id"] = trace_id
    if tenant_id:
        record["tenant_id"] = tenant_id
    if include_message:
        record["message"] = payload.decode("utf-8", errors="replace")
    return json.dumps(record).encode()
