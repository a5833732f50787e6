"""The delivery ledger: every request of a run by id and what was observed about it, and its
typed summary. Pure bookkeeping, no I/O (the driver feeds it; the delivery judge reads it).

Kinds of request (ids are unique per run):
- valid: must get exactly one `ok` reply;
- poison: its tenant is not allowed, so the router can never process it; it must end in the
  DLQ (its error replies on each delivery are expected, not duplicates);
- malformed: schema-invalid (no task type); must get an error reply, and is ACKed;
- http: a synchronous decide request, answered whatever its status.
The ledger counts exactly, never samples: answered, dead-lettered, lost, duplicates and
unexpected messages (answers for ids never published), plus end-to-end latency. Beside the
router's answers it records the server's own testimony: JetStream's MAX_DELIVERIES and
MSG_TERMINATED advisories (with their delivery counts) and the consumer's `max_deliver`.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.dataloss import History, Published
from harness.workload.spec import Kind


class _Record(BaseModel):
    """Evidence records: unknown keys are refused, so a renamed field cannot vanish silently."""

    model_config = ConfigDict(extra="forbid")


class Latency(_Record):
    """End-to-end latency of valid requests, seconds (percentiles absent when none)."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


class DeadLettered(_Record):
    """One dead-lettered message and how often it was delivered first, and who says so."""

    request_id: str
    deliveries: int | None
    source: str


class ServerView(_Record):
    """The consumers' `max_deliver` as the server holds it (independent of the router)."""

    stream: str | None = None
    consumers: dict[str, int] = Field(default_factory=dict)
    max_deliver: int | None = None
    error: str | None = None


class LedgerSummary(_Record):
    """What the ledger shows at the end of a run (the evidence's `workload` record). The
    driver adds its publish rate and publish errors."""

    published: int = 0
    acked: int = 0
    not_acked: int = 0
    answered: int = 0
    dead_lettered: int = 0
    lost: int = 0
    lost_ids: list[str] = Field(default_factory=list)
    messages_with_duplicates: int = 0
    duplicate_outcomes: int = 0
    max_duplicates_per_message: int = 0
    unexpected: int = 0
    foreign: int = 0
    unparsable: int = 0
    poison_published: int = 0
    poison_dead_lettered: int = 0
    dead_lettered_messages: list[DeadLettered] = Field(default_factory=list)
    valid_dead_lettered: list[str] = Field(default_factory=list)
    exhausted_valid: list[str] = Field(default_factory=list)
    advisories: int = 0
    http_sent: int = 0
    http_answered: int = 0
    usage_missing: int = 0
    usage_missing_ids: list[str] = Field(default_factory=list)
    server: ServerView = Field(default_factory=ServerView)
    by_kind: dict[str, dict[str, int]] = Field(default_factory=dict)
    latency_s: Latency = Field(default_factory=Latency)
    rate: float | None = None
    publish_errors: dict[str, int] = Field(default_factory=dict)


@dataclass
class Entry:
    """One published request and everything observed about it."""

    request_id: str
    kind: Kind
    published_at: float
    acked_at: float | None = None
    stream_seq: int | None = None
    publish_error: str | None = None
    ok_replies: list[float] = field(default_factory=list)
    error_replies: list[float] = field(default_factory=list)
    dead_letters: list[float] = field(default_factory=list)
    dlq_delivery_count: int | None = None  # what the router's DLQ record claims
    usage: list[float] = field(default_factory=list)  # usage events seen for this request

    def outcome(self) -> str:
        """answered | dead_lettered | lost (acked, nothing terminal) | not_acked."""
        if self.acked_at is None:
            return "not_acked"
        if self.kind == "poison":
            return "dead_lettered" if self.dead_letters else "lost"
        if self.kind == "http":  # answered synchronously, whatever the status
            return "answered" if self.ok_replies or self.error_replies else "lost"
        replies = self.error_replies if self.kind == "malformed" else self.ok_replies
        if replies:
            return "answered"
        return "dead_lettered" if self.dead_letters else "lost"

    def duplicates(self) -> int:
        """Terminal outcomes beyond the first: extra ok replies, extra DLQ records, ..."""
        if self.kind == "poison":
            return max(0, len(self.dead_letters) - 1)
        replies = self.error_replies if self.kind == "malformed" else self.ok_replies
        return max(0, len(replies) - 1)

    def latency(self) -> float | None:
        terminal = {
            "valid": self.ok_replies,
            "http": self.ok_replies,
            "malformed": self.error_replies,
            "poison": self.dead_letters,
        }[self.kind]
        return terminal[0] - self.published_at if terminal else None


class Ledger:
    """Every request of a run by id; pure bookkeeping, no I/O (so it is unit-testable)."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag  # this run's request-id prefix; other ids are another run's (foreign)
        self.entries: dict[str, Entry] = {}
        self.unexpected: list[dict[str, Any]] = []
        self.foreign = 0
        self.unparsable = 0
        self.advisories: dict[int, list[dict[str, Any]]] = {}  # by stream sequence
        self.stream: str | None = None  # the stream the workload's subject lands in
        self.server = ServerView()

    def published(self, request_id: str, kind: Kind, at: float) -> Entry:
        entry = Entry(request_id, kind, at)
        self.entries[request_id] = entry
        return entry

    def reply(self, payload: bytes, at: float) -> None:
        try:
            body = json.loads(payload)
            request_id = body.get("context", {}).get("request_id")
            ok = bool(body.get("ok"))
        except (ValueError, AttributeError):
            self.unparsable += 1
            return
        if (entry := self._ours("reply", request_id, at)) is None:
            return
        (entry.ok_replies if ok else entry.error_replies).append(at)

    def http_answer(self, entry: Entry, status: int, at: float) -> None:
        """The router answered a synchronous decide request (any status: it answered)."""
        entry.acked_at = at
        (entry.ok_replies if status == 200 else entry.error_replies).append(at)

    def usage_event(self, payload: bytes, at: float) -> None:
        """A usage event the router emitted for a decision (after a reconnect, maybe late)."""
        try:
            request_id = json.loads(payload).get("request_id")
        except (ValueError, AttributeError):
            self.unparsable += 1
            return
        if (entry := self._ours("usage", request_id, at)) is None:
            return
        entry.usage.append(at)

    def dead_letter(self, payload: bytes, at: float) -> None:
        try:
            record = json.loads(payload)
            request_id = record.get("request_id") or _embedded_request_id(record)
        except (ValueError, AttributeError):
            self.unparsable += 1
            return
        if (entry := self._ours("dlq", request_id, at)) is None:
            return
        entry.dead_letters.append(at)
        count = record.get("delivery_count")
        if isinstance(count, int):
            entry.dlq_delivery_count = count

    def _ours(self, subject: str, request_id: object, at: float) -> Entry | None:
        """The entry an answer on `subject` belongs to, or None once it is counted as stray."""
        entry = self.entries.get(request_id) if isinstance(request_id, str) else None
        if entry is None:
            self._stray(subject, request_id, at)
        return entry

    def _stray(self, subject: str, request_id: object, at: float) -> None:
        """An answer for no request of ours: another run's (replayed, e.g. by a re-created
        consumer) or one nobody published (unexpected)."""
        if self.tag and isinstance(request_id, str) and not request_id.startswith(self.tag + "-"):
            self.foreign += 1
            return
        self.unexpected.append({"subject": subject, "request_id": request_id, "at": at})

    def advisory(self, payload: bytes, at: float) -> None:
        """A JetStream consumer advisory (max deliveries reached, message terminated)."""
        try:
            body = json.loads(payload)
            seq = int(body["stream_seq"])
        except (ValueError, KeyError, TypeError):
            self.unparsable += 1
            return
        if self.stream is not None and body.get("stream") != self.stream:
            return
        kind = str(body.get("type", "")).rsplit(".", 1)[-1]
        self.advisories.setdefault(seq, []).append(
            {
                "type": kind,
                "deliveries": body.get("deliveries"),
                "consumer": body.get("consumer"),
                "at": at,
            }
        )

    def _deliveries(self, entry: Entry) -> tuple[int | None, str]:
        """How often a dead-lettered message was delivered, and who says so."""
        for advisory in self.advisories.get(entry.stream_seq or -1, []):
            if isinstance(advisory.get("deliveries"), int):
                return advisory["deliveries"], f"server's {advisory['type']} advisory"
        if entry.dlq_delivery_count is not None:
            return entry.dlq_delivery_count, "router's DLQ record (no server advisory)"
        return None, "nothing"

    def history(self) -> History:
        """Every JetStream publish in publish order, with its stream sequence when acked (the
        data-loss judge's input; synchronous HTTP decides never enter the stream)."""
        return History(
            tag=self.tag,
            published=[
                Published(e.request_id, e.stream_seq if e.acked_at is not None else None)
                for e in self.entries.values()
                if e.kind != "http"
            ],
        )

    def settled(self) -> bool:
        """Every acked request has its terminal outcome."""
        return all(e.outcome() != "lost" for e in self.entries.values() if e.acked_at)

    def summary(self) -> LedgerSummary:
        entries = list(self.entries.values())
        outcomes: dict[str, int] = {}
        by_kind: dict[str, dict[str, int]] = {}
        for e in entries:
            outcome = e.outcome()
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            kind = by_kind.setdefault(e.kind, {"published": 0})
            kind["published"] += 1
            kind[outcome] = kind.get(outcome, 0) + 1
        duplicates = [e.duplicates() for e in entries]
        latencies = sorted(lat for e in entries if e.kind == "valid" and (lat := e.latency()))
        return LedgerSummary(
            published=len(entries),
            acked=sum(1 for e in entries if e.acked_at is not None),
            not_acked=outcomes.get("not_acked", 0),
            answered=outcomes.get("answered", 0),
            dead_lettered=outcomes.get("dead_lettered", 0),
            lost=outcomes.get("lost", 0),
            lost_ids=sorted(e.request_id for e in entries if e.outcome() == "lost")[:50],
            messages_with_duplicates=sum(1 for d in duplicates if d),
            duplicate_outcomes=sum(duplicates),
            max_duplicates_per_message=max(duplicates, default=0),
            unexpected=len(self.unexpected),
            foreign=self.foreign,
            unparsable=self.unparsable,
            poison_published=sum(1 for e in entries if e.kind == "poison" and e.acked_at),
            poison_dead_lettered=sum(1 for e in entries if e.kind == "poison" and e.dead_letters),
            dead_lettered_messages=[
                DeadLettered(request_id=e.request_id, deliveries=d, source=src)
                for e in entries
                if e.dead_letters
                for d, src in [self._deliveries(e)]
            ],
            valid_dead_lettered=sorted(
                e.request_id
                for e in entries
                if e.kind == "valid" and e.outcome() == "dead_lettered"
            ),
            exhausted_valid=sorted(
                e.request_id
                for e in entries
                if e.kind == "valid"
                and not e.ok_replies
                and any(
                    a["type"] == "max_deliver" for a in self.advisories.get(e.stream_seq or -1, [])
                )
            ),
            advisories=sum(len(v) for v in self.advisories.values()),
            http_sent=sum(1 for e in entries if e.kind == "http"),
            http_answered=sum(1 for e in entries if e.kind == "http" and e.ok_replies),
            usage_missing=sum(
                1 for e in entries if e.kind in ("valid", "http") and e.ok_replies and not e.usage
            ),
            usage_missing_ids=sorted(
                e.request_id
                for e in entries
                if e.kind in ("valid", "http") and e.ok_replies and not e.usage
            )[:20],
            server=self.server.model_copy(),
            by_kind=by_kind,
            latency_s=_percentiles(latencies),
        )


def _percentiles(values: list[float]) -> Latency:
    if not values:
        return Latency(count=0)
    qs = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return Latency(
        count=len(values),
        p50=round(qs[49], 4),
        p95=round(qs[94], 4),
        p99=round(qs[98], 4),
        max=round(values[-1], 4),
    )


def _embedded_request_id(record: dict[str, Any]) -> object:
    """The request id inside the dead-lettered payload, when the router did not lift it out
    (a message it could not parse in time, e.g. NAKed under backpressure until exhausted)."""
    message = record.get("message")
    if not isinstance(message, str):
        return None
    try:
        body = json.loads(message)
    except ValueError:
        return None
    return body.get("request_id") if isinstance(body, dict) else None
