"""Decide consumer: fetch loop with an in-flight cap, and per message backpressure gate ->
validation -> tenant allowlist -> provider pick (`intake.Decider`) -> reply -> usage event -> ACK
(NAK / DLQ + TERM on failure)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from router.backpressure import Backpressure
from router.config import Config
from router.connection import Connection
from router.decide import REPLY_TO_HEADER, DecideRequest, dlq_record, header
from router.intake import INVALID, REJECTED, Decider
from router.metrics import LATENCY_STATUSES, REDACTED, REDELIVERY_SOURCES, REPLY_TO_LABEL, Metrics
from router.reasons import reason_of
from router.topology import SubscribeFailed
from router.usage import UsageEmitter

log = structlog.get_logger(component="router.consumer")


class DecideConsumer:
    """Processes decide requests concurrently (up to max_inflight) from the durable consumer."""

    def __init__(
        self,
        config: Config,
        metrics: Metrics,
        conn: Connection,
        backpressure: Backpressure,
        decider: Decider,
        usage: UsageEmitter,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.conn = conn
        self.backpressure = backpressure
        self.decider = decider
        self.usage = usage
        self.inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot = asyncio.Event()
        self._stop = asyncio.Event()
        self._resubscribe = False
        subject, consumer = config.subject, config.consumer
        self._inflight_gauge = metrics.inflight.labels(subject)
        self._latency = {s: metrics.processing_latency.labels(subject, s) for s in LATENCY_STATUSES}
        self._delivered = metrics.delivered.labels(subject, consumer)
        self._redelivered = metrics.redelivered.labels(subject, consumer)
        self._processed = metrics.processed_success.labels(subject, consumer)

    def request_resubscribe(self) -> None:
        """Called by the monitor when consumer info says the consumer or stream is gone."""
        self._resubscribe = True

    # ------------------------------------------------------------------ fetch loop
    async def run(self) -> None:
        c = self.config
        psub: JetStreamContext.PullSubscription | None = None
        generation = -1
        failures = 0
        while not self._stop.is_set():
            if not self.conn.connected:
                psub = None
                await self._until(self.conn.wait_connected())
                continue
            if psub is None or generation != self.conn.generation or self._resubscribe:
                self._resubscribe = False
                try:
                    psub = await self.conn.subscribe()
                    generation = self.conn.generation
                    failures = 0
                except SubscribeFailed:
                    psub = None
                    failures += 1
                    if failures % max(c.subscribe_recreate_after, 1) == 0:
                        await self._recreate_topology()
                    await self._until(asyncio.sleep(c.reconnect_delay(failures - 1)))
                    continue
            while self.inflight >= c.max_inflight and not self._stop.is_set():
                self._slot.clear()
                await self._until(self._slot.wait())
            batch = min(c.fetch_batch, c.max_inflight - self.inflight)
            try:
                msgs = await psub.fetch(batch, timeout=c.fetch_timeout)
            except nats.errors.TimeoutError:
                continue
            except Exception as exc:
                log.warning(
                    "fetch_failed", reason=reason_of(exc), error=str(exc) or type(exc).__name__
                )
                psub = None
                await self._until(asyncio.sleep(0.1))
                continue
            for msg in msgs:
                self._start(msg)

    async def _recreate_topology(self) -> None:
        try:
            await self.conn.ensure_topology()
        except Exception as exc:
            log.warning("recreate_topology_failed", reason=reason_of(exc), error=str(exc))

    async def _until(self, awaitable: object) -> None:
        """Await `awaitable` unless stop() comes first."""
        task = asyncio.ensure_future(awaitable)  # type: ignore[arg-type]
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, stop):
            if not pending.done():
                pending.cancel()

    def _start(self, msg: Msg) -> None:
        self.inflight += 1
        self._inflight_gauge.set(self.inflight)
        task = asyncio.create_task(self.handle(msg))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.inflight -= 1
        self._inflight_gauge.set(self.inflight)
        self._slot.set()

    async def stop(self, grace: float = 5.0) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)

    # ------------------------------------------------------------------ one message
    async def handle(self, msg: Msg) -> None:
        """Process one delivery; never raises (a crash would leave the message to ack_wait)."""
        started = time.monotonic()
        status = "success"
        try:
            status = await self._process(msg)
        except Exception:
            log.exception("decide_processing_crashed")
        finally:
            elapsed = time.monotonic() - started
            self._latency[status].observe(elapsed)
            self.backpressure.window.add(elapsed)

    async def _process(self, msg: Msg) -> str:
        c = self.config
        m = self.metrics
        try:
            meta = msg.metadata
            delivery, stream_seq = meta.num_delivered, meta.sequence.stream
        except Exception:
            delivery, stream_seq = 1, 0
        self._delivered.inc()
        if delivery > 1:
            self._redelivered.inc()
        if self.backpressure.active:
            m.backpressure_rejections.labels(c.subject, "backpressure_active").inc()
            return await self._fail(
                msg, delivery, stream_seq, "backpressure", None, c.bp_retry_after
            )
        outcome = self.decider.decide(msg.data, msg.headers, source="jetstream")
        await self._reply(msg, outcome.body)
        if outcome.status == INVALID:
            await self._ack(msg, delivery)  # an invalid request never becomes valid: no redelivery
            return "invalid"
        if outcome.status == REJECTED:
            return await self._fail(
                msg,
                delivery,
                stream_seq,
                "tenant_validation_failed",
                outcome.request,
                c.nak_delay(delivery),
            )
        assert outcome.request is not None and outcome.provider_id is not None
        self._processed.inc()
        await self.usage.emit(outcome.request, outcome.provider_id, "jetstream")
        await self._ack(msg, delivery)
        return "success"

    async def _reply(self, msg: Msg, payload: bytes) -> None:
        reply_to = header(msg.headers, REPLY_TO_HEADER)
        if reply_to:
            await self.conn.publish(reply_to, payload, label_subject=REPLY_TO_LABEL)
        else:
            subject = self.config.reply_subject
            await self.conn.publish(subject, payload, label_subject=subject)

    async def _ack(self, msg: Msg, delivery: int, *, term: bool = False) -> None:
        m = self.metrics
        m.js_ack_total.inc()
        m.redelivery_decision.labels("term" if term else "ack", m.delivery_label(delivery)).inc()
        await self.conn.ack(msg, term=term)

    async def _fail(
        self,
        msg: Msg,
        delivery: int,
        stream_seq: int,
        reason: str,
        request: DecideRequest | None,
        delay: float,
    ) -> str:
        """NAK with backoff, or at max_deliver: count exhaustion, dead-letter, TERM."""
        c = self.config
        m = self.metrics
        source = REDELIVERY_SOURCES[reason]
        tenant = m.tenant_label(request.tenant_id if request else None)
        request_id = request.request_id if request else None
        if delivery >= c.max_deliver:
            await self._dead_letter(msg, delivery, stream_seq, reason, source, tenant, request)
            return "exhausted"
        m.redelivery.labels(
            c.assignment_id, REDACTED, REDACTED, reason, source, m.delivery_label(delivery), tenant
        ).inc()
        m.redelivery_decision.labels("nak", m.delivery_label(delivery)).inc()
        log.info(
            "Message redelivery requested",
            reason=reason,
            source=source,
            delivery_count=delivery,
            delay_s=delay,
            request_id=request_id,
            stream_seq=stream_seq,
        )
        await self.conn.nak(msg, delay)
        return "backpressure" if reason == "backpressure" else "rejected"

    async def _dead_letter(
        self,
        msg: Msg,
        delivery: int,
        stream_seq: int,
        reason: str,
        source: str,
        tenant: str,
        request: DecideRequest | None,
    ) -> None:
        c = self.config
        m = self.metrics
        max_deliver = str(c.max_deliver)
        m.maxdeliver_exhausted.labels(
            c.assignment_id,
            REDACTED,
            REDACTED,
            max_deliver,
            max_deliver,
            "maxdeliver_exhausted",
            tenant,
        ).inc()
        original = dict(msg.headers or {})
        msg_id = (
            header(original, "Nats-Msg-Id")
            or (request.request_id if request else None)
            or f"{c.stream}:{stream_seq}"
        )
        record = dlq_record(
            original_subject=msg.subject,
            msg_id=msg_id,
            payload=msg.data,
            request_id=request.request_id if request else None,
            tenant_id=request.tenant_id if request else None,
            trace_id=request.trace_id if request else None,
            delivery_count=delivery,
            max_deliver=c.max_deliver,
            last_error={"reason": reason, "source": source},
            stream_seq=stream_seq,
        )
        headers = {k: v for k, v in original.items() if not k.lower().startswith("nats-")}
        headers.update({"x-dlq-reason": "maxdeliver_exhausted", "x-original-msg-id": msg_id})
        outcome = await self.conn.publish_with_ack(c.dlq_subject, record, headers=headers)
        if outcome != "failed":
            m.dlq_total.labels(
                c.assignment_id, "maxdeliver_exhausted", tenant, source, REDACTED, REDACTED
            ).inc()
        log.warning(
            "maxdeliver_exhausted",
            msg_id=msg_id,
            delivery_count=delivery,
            reason=reason,
            dlq=outcome,
            stream_seq=stream_seq,
        )
        with contextlib.suppress(Exception):
            await self._ack(msg, delivery, term=True)
