"""The workload: decide requests published to JetStream at a rate, a tap on the router's
replies and dead-letter subject, and a ledger that accounts for every acked request.

Kinds of request (ids are unique per run):
- valid: must get exactly one `ok` reply;
- poison: its tenant is not allowed, so the router can never process it; it must end in the
  DLQ (its error replies on each delivery are expected, not duplicates);
- malformed: schema-invalid (no task type); must get an error reply, and is ACKed.
The ledger counts exactly, never samples: answered, dead-lettered, lost, duplicates and
unexpected messages (answers for ids never published), plus end-to-end latency. Beside the
router's answers it records the server's own testimony: JetStream's MAX_DELIVERIES and
MSG_TERMINATED advisories (with their delivery counts) and the consumer's `max_deliver`.
"""

from __future__ import annotations

import contextlib
import json
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import anyio
import httpx
import nats
import structlog
from nats.aio.msg import Msg
from pydantic import Field, model_validator

from harness.config import Strict
from harness.durations import Duration
from harness.http import async_client

log = structlog.get_logger("workload")

Kind = Literal["valid", "poison", "malformed", "http"]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
ADVISORIES = (
    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
    "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>",
)


class WorkloadMix(Strict):
    """Fractions of each kind of decide request; they must add up to 1.

    `poison`: a request the router can never process (its tenant is not allowed); it is
    NAKed until max_deliver and then dead-lettered. `malformed`: schema-invalid; the router
    answers with an error and ACKs it.
    """

    valid: Fraction = 1.0
    poison: Fraction = 0.0
    malformed: Fraction = 0.0

    @model_validator(mode="after")
    def _sums_to_one(self) -> WorkloadMix:
        total = self.valid + self.poison + self.malformed
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"mix fractions must add up to 1, got {total:g}")
        return self


class WorkloadSpec(Strict):
    """The decide requests the harness publishes during the whole run. The rate is per second
    of the target's clock (rates and thresholds are never compressed)."""

    rate: Annotated[float, Field(gt=0, le=5000)] = 20.0
    mix: WorkloadMix = Field(default_factory=WorkloadMix)
    subject: str = "beamline.router.v1.decide"
    allowed_tenants: list[str] = Field(
        default_factory=lambda: ["tenant-a", "tenant-b"], min_length=1
    )
    poison_tenant: str = "tenant-blocked"
    http_rate: Annotated[float, Field(ge=0, le=2000)] = Field(
        0.0,
        description="synchronous decide requests per second to the router's POST /decide "
        "(the path that keeps answering while NATS is away, and queues its NATS publishes)",
    )
    usage_subject: str = "beamline.usage.v1.metered"
    drain: Duration = Field(
        10 * 60.0, gt=0, description="how long to wait for outcomes after publishing (production)"
    )


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
        self.server: dict[str, Any] = {}

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

    def settled(self) -> bool:
        """Every acked request has its terminal outcome."""
        return all(e.outcome() != "lost" for e in self.entries.values() if e.acked_at)

    def summary(self) -> dict[str, Any]:
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
        return {
            "published": len(entries),
            "acked": sum(1 for e in entries if e.acked_at is not None),
            "not_acked": outcomes.get("not_acked", 0),
            "answered": outcomes.get("answered", 0),
            "dead_lettered": outcomes.get("dead_lettered", 0),
            "lost": outcomes.get("lost", 0),
            "lost_ids": sorted(e.request_id for e in entries if e.outcome() == "lost")[:50],
            "messages_with_duplicates": sum(1 for d in duplicates if d),
            "duplicate_outcomes": sum(duplicates),
            "max_duplicates_per_message": max(duplicates, default=0),
            "unexpected": len(self.unexpected),
            "foreign": self.foreign,
            "unparsable": self.unparsable,
            "poison_published": sum(1 for e in entries if e.kind == "poison" and e.acked_at),
            "poison_dead_lettered": sum(
                1 for e in entries if e.kind == "poison" and e.dead_letters
            ),
            "dead_lettered_messages": [
                {"request_id": e.request_id, "deliveries": d, "source": src}
                for e in entries
                if e.dead_letters
                for d, src in [self._deliveries(e)]
            ],
            "valid_dead_lettered": sorted(
                e.request_id
                for e in entries
                if e.kind == "valid" and e.outcome() == "dead_lettered"
            ),
            "exhausted_valid": sorted(
                e.request_id
                for e in entries
                if e.kind == "valid"
                and not e.ok_replies
                and any(
                    a["type"] == "max_deliver" for a in self.advisories.get(e.stream_seq or -1, [])
                )
            ),
            "advisories": sum(len(v) for v in self.advisories.values()),
            "http_sent": sum(1 for e in entries if e.kind == "http"),
            "http_answered": sum(1 for e in entries if e.kind == "http" and e.ok_replies),
            "usage_missing": sum(
                1 for e in entries if e.kind in ("valid", "http") and e.ok_replies and not e.usage
            ),
            "usage_missing_ids": sorted(
                e.request_id
                for e in entries
                if e.kind in ("valid", "http") and e.ok_replies and not e.usage
            )[:20],
            "server": self.server,
            "by_kind": by_kind,
            "latency_s": _percentiles(latencies),
        }


def _percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    qs = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {
        "count": len(values),
        "p50": round(qs[49], 4),
        "p95": round(qs[94], 4),
        "p99": round(qs[98], 4),
        "max": round(values[-1], 4),
    }


def request_body(kind: Kind, request_id: str, tenant: str) -> bytes:
    body: dict[str, Any] = {"version": "1", "request_id": request_id, "tenant_id": tenant}
    if kind != "malformed":
        body["task"] = {"type": "text.generate", "payload": {"prompt": "chaos"}}
    return json.dumps(body).encode()


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


class Workload:
    """Publishes at `spec.rate` until stopped; taps replies and the DLQ into the ledger."""

    def __init__(
        self,
        nats_url: str | list[str],
        spec: WorkloadSpec,
        *,
        decide_urls: list[str] | None = None,
        seed: int | None = None,
    ):
        self.nats_url = nats_url
        self.decide_urls = list(decide_urls or [])
        self.spec = spec
        self.run_tag = uuid.uuid4().hex[:8]
        self.ledger = Ledger(self.run_tag)
        self._rng = random.Random(seed)
        self._stop = anyio.Event()
        self._stopped = anyio.Event()
        self._nc: Any = None
        self._counter = 0
        self._poison: float | None = None
        self._poison_credit = 0.0
        self.publish_errors: dict[str, int] = {}

    def poison_fraction(self) -> float:
        return self.spec.mix.poison if self._poison is None else self._poison

    def poison_in_flight(self) -> int:
        """Acked poison requests the server still delivers: neither dead-lettered nor ended
        by the server (terminated or out of deliveries, per its advisories)."""
        ended = self.ledger.advisories
        return sum(
            1
            for e in self.ledger.entries.values()
            if e.kind == "poison"
            and e.acked_at
            and not e.dead_letters
            and (e.stream_seq is None or e.stream_seq not in ended)
        )

    def set_poison_override(self, fraction: float | None) -> None:
        """A poison fault: this fraction of requests is poison until reset with None. The
        fault's poison is evenly spaced, the first request after the switch poison: a random
        draw at 0.4/s can leave the first poison seconds late, and the time to the first
        dead letter is what the alerts are judged on."""
        self._poison = fraction
        self._poison_credit = 1.0

    def _next_kind(self) -> Kind:
        mix = self.spec.mix
        if self._poison is not None:
            poison = self._poison_credit >= 1.0 - 1e-9  # sums of fractions drift
            self._poison_credit += self._poison - (1.0 if poison else 0.0)
            if poison:
                return "poison"
            malformed = mix.malformed / (1.0 - mix.poison) if mix.poison < 1 else 0.0
            return "malformed" if self._rng.random() < malformed else "valid"
        r = self._rng.random()
        if r < mix.poison:
            return "poison"
        return "malformed" if r < mix.poison + mix.malformed else "valid"

    async def run(self) -> None:
        """Connect, tap, and publish on a fixed schedule until `stop_and_drain`."""

        async def quiet(_: Exception) -> None:
            return None

        self._nc = await nats.connect(
            self.nats_url,
            name=f"harness-workload-{self.run_tag}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=quiet,
        )
        subject = self.spec.subject
        await self._nc.subscribe(f"{subject}.reply", cb=self._on_reply)
        await self._nc.subscribe(f"{subject}.dlq", cb=self._on_dlq)
        for advisory in ADVISORIES:
            await self._nc.subscribe(advisory, cb=self._on_advisory)
        await self._nc.subscribe(self.spec.usage_subject, cb=self._on_usage)
        js = self._nc.jetstream(timeout=5)
        with contextlib.suppress(Exception):  # no stream yet: the router creates it
            self.ledger.stream = await js.find_stream_name_by_subject(subject)
        interval = 1.0 / self.spec.rate
        next_at = time.monotonic()
        log.info("workload_start", rate=self.spec.rate, subject=subject)
        try:
            async with anyio.create_task_group() as tg:
                if self.spec.http_rate > 0:
                    tg.start_soon(self._http_loop)
                limiter = anyio.CapacityLimiter(256)
                while not self._stop.is_set():
                    tg.start_soon(self._publish, js, limiter)
                    next_at += interval
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        with anyio.move_on_after(delay):
                            await self._stop.wait()
                    elif delay < -1.0:
                        next_at = time.monotonic()  # fell behind by a second: do not burst
        finally:
            self._stopped.set()

    async def _http_loop(self) -> None:
        """Synchronous decide requests at `http_rate`, round-robin over the routers."""
        if not self.decide_urls:
            raise RuntimeError("the workload sends synchronous decides but no router URL is known")
        interval = 1.0 / self.spec.http_rate
        next_at = time.monotonic()
        limiter = anyio.CapacityLimiter(64)
        async with async_client(5.0) as client, anyio.create_task_group() as tg:
            while not self._stop.is_set():
                tg.start_soon(self._decide, client, limiter)
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    with anyio.move_on_after(delay):
                        await self._stop.wait()
                elif delay < -1.0:
                    next_at = time.monotonic()

    async def _decide(self, client: httpx.AsyncClient, limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            self._counter += 1
            request_id = f"{self.run_tag}-{self._counter:07d}"
            tenant = self._rng.choice(self.spec.allowed_tenants)
            url = self.decide_urls[self._counter % len(self.decide_urls)]
            entry = self.ledger.published(request_id, "http", time.time())
            try:
                response = await client.post(
                    url,
                    content=request_body("valid", request_id, tenant),
                    headers={"tenant_id": tenant, "trace_id": request_id},
                )
            except httpx.HTTPError as exc:
                entry.publish_error = f"{type(exc).__name__}: {exc}"
                key = f"http {type(exc).__name__}"
                self.publish_errors[key] = self.publish_errors.get(key, 0) + 1
                return
            self.ledger.http_answer(entry, response.status_code, time.time())

    async def _publish(self, js: Any, limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            self._counter += 1
            kind = self._next_kind()
            request_id = f"{self.run_tag}-{self._counter:07d}"
            tenant = (
                self.spec.poison_tenant
                if kind == "poison"
                else self._rng.choice(self.spec.allowed_tenants)
            )
            entry = self.ledger.published(request_id, kind, time.time())
            try:
                ack = await js.publish(
                    self.spec.subject,
                    request_body(kind, request_id, tenant),
                    headers={
                        "Nats-Msg-Id": request_id,
                        "tenant_id": tenant,
                        "trace_id": request_id,
                    },
                )
            except Exception as exc:  # noqa: BLE001 - a failed publish is recorded, not fatal
                entry.publish_error = f"{type(exc).__name__}: {exc}"
                key = type(exc).__name__
                self.publish_errors[key] = self.publish_errors.get(key, 0) + 1
                return
            entry.acked_at = time.time()
            entry.stream_seq = ack.seq

    async def _on_reply(self, msg: Msg) -> None:
        self.ledger.reply(msg.data, time.time())

    async def _on_dlq(self, msg: Msg) -> None:
        self.ledger.dead_letter(msg.data, time.time())

    async def _on_advisory(self, msg: Msg) -> None:
        self.ledger.advisory(msg.data, time.time())

    async def _on_usage(self, msg: Msg) -> None:
        self.ledger.usage_event(msg.data, time.time())

    async def _server_view(self) -> None:
        """The consumers' `max_deliver` as the server holds it (independent of the router)."""
        if self._nc is None:
            return
        js = self._nc.jetstream(timeout=5)
        try:
            stream = self.ledger.stream or await js.find_stream_name_by_subject(self.spec.subject)
            consumers = {c.name: c.config.max_deliver for c in await js.consumers_info(stream)}
        except Exception as exc:  # noqa: BLE001 - recorded; the delivery judge reports it
            self.ledger.server = {"error": f"{type(exc).__name__}: {exc}"}
            return
        named = {a["consumer"] for v in self.ledger.advisories.values() for a in v}
        relevant = {n: m for n, m in consumers.items() if n in named} or consumers
        values = {m for m in relevant.values() if m and m > 0}
        self.ledger.server = {
            "stream": stream,
            "consumers": consumers,
            "max_deliver": values.pop() if len(values) == 1 else None,
        }
        if len({m for m in relevant.values()}) > 1:
            self.ledger.server["error"] = f"consumers disagree on max_deliver: {relevant}"

    async def stop_and_drain(self, timeout: float) -> None:
        """Stop publishing; wait until every acked request settled (or `timeout`), then a
        short grace period so late duplicates are counted too."""
        self._stop.set()
        with anyio.move_on_after(5):
            await self._stopped.wait()
        deadline = time.monotonic() + timeout
        while not self.ledger.settled() and time.monotonic() < deadline:  # noqa: ASYNC110
            await anyio.sleep(0.2)  # the ledger is plain state: poll it
        await anyio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        with anyio.move_on_after(10):
            await self._server_view()
        await self.close()

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None

    def summary(self) -> dict[str, Any]:
        return {
            **self.ledger.summary(),
            "rate": self.spec.rate,
            "publish_errors": self.publish_errors,
        }
