"""NATS connection state machine: own reconnect backoff, fail-open, disconnected-publish queue,
and confirmed ACK/NAK/publish operations counting failures by reason (catalogue §6.7, §6.8)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    StorageType,
    StreamConfig,
)

from router.config import Config
from router.faults import FaultHook, InjectedFault
from router.metrics import CORE_STREAM_LABEL, Metrics

log = structlog.get_logger(component="router.connection")

ACK = b"+ACK"
TERM = b"+TERM"
MAX_ACK_PENDING_FACTOR = 20


class NotConnected(Exception):
    """The router is between connections; the operation was not attempted on the wire."""


class SubscribeFailed(Exception):
    """Binding to the durable consumer failed; `reason` is already counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reason_of(exc: BaseException) -> str:
    """Map a client error onto the bounded NATS `reason` vocabulary (catalogue §5.5)."""
    if isinstance(exc, InjectedFault):
        return exc.reason
    if isinstance(exc, NotConnected):
        return "not_connected"
    if isinstance(exc, nats.js.errors.NotFoundError):
        if exc.err_code == 10014 or "consumer" in (exc.description or ""):
            return "consumer_not_found"
        return "stream_not_found"
    if isinstance(exc, nats.js.errors.NoStreamResponseError):
        return "stream_not_found"
    if isinstance(exc, nats.js.errors.ServiceUnavailableError):
        return "no_responders"
    if isinstance(exc, nats.errors.NoRespondersError):
        return "no_responders"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, nats.errors.AuthorizationError):
        return "authorization"
    if isinstance(exc, nats.errors.InvalidUserCredentialsError):
        return "auth_failed"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(
        exc,
        nats.errors.ConnectionClosedError
        | nats.errors.StaleConnectionError
        | nats.errors.ConnectionReconnectingError
        | nats.errors.ConnectionDrainingError
        | nats.errors.OutboundBufferLimitError
        | ConnectionError
        | EOFError,
    ):
        return "connection_closed"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "no_route"
        if exc.errno == errno.ECONNREFUSED:
            return "connection_refused"
        return "connection_closed"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        return reason_of(cause)
    if isinstance(exc, nats.errors.NoServersError):
        return "connection_refused"
    return "other"


def error_type_of(reason: str) -> str:
    """Publish error classes of `router_nats_publish_errors_total`."""
    if reason == "timeout":
        return "timeout"
    if reason in ("connection_closed", "connection_refused", "not_connected", "no_route"):
        return "connection"
    if reason in ("stream_not_found", "no_responders"):
        return "broker_error"
    return "unknown"


@dataclass
class PendingOp:
    """A publish waiting for the connection to come back."""

    kind: str  # "publish" or "publish_with_ack"
    subject: str
    payload: bytes
    headers: dict[str, str] | None
    label_subject: str


class Connection:
    """Owns the NATS client; every wire operation of the router goes through here."""

    def __init__(self, config: Config, metrics: Metrics, faults: FaultHook) -> None:
        self.config = config
        self.metrics = metrics
        self.faults = faults
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.generation = 0
        self.fail_open = config.fail_open
        self.queue: deque[PendingOp] = deque()
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._stop = asyncio.Event()
        self._token: object | None = None
        self._topology_ready = False

    # ------------------------------------------------------------------ state
    @property
    def connected(self) -> bool:
        nc = self.nc
        return self._connected.is_set() and nc is not None and nc.is_connected

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def _set_state(self, state: str) -> None:
        previous = self.metrics.connection_state
        self.metrics.set_connection_state(state)
        if previous != state:
            log.info("nats_state", state=state, previous=previous)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # ------------------------------------------------------------------ supervisor
    async def run(self) -> None:
        """Connect (retrying), then wait for loss and reconnect, until stop()."""
        if not await self._connect_loop(initial=True):
            return
        while not self._stop.is_set():
            lost = asyncio.ensure_future(self._lost.wait())
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({lost, stop}, return_when=asyncio.FIRST_COMPLETED)
            lost.cancel()
            stop.cancel()
            if self._stop.is_set():
                return
            await self._handle_loss()
            if not await self._connect_loop(initial=False):
                return

    async def _handle_loss(self) -> None:
        self._connected.clear()
        self._token = None
        self.metrics.connection_lost.inc()
        self._set_state("disconnected")
        log.warning("NATS_CONNECTION_LOST", generation=self.generation)
        nc, self.nc = self.nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 2.0)

    async def _connect_loop(self, *, initial: bool) -> bool:
        """Attempt until connected (True) or stopped (False); counts and backs off per §6.7."""
        failures = 0
        while not self._stop.is_set():
            if not initial or failures:
                await self._sleep(self.config.reconnect_delay(failures))
                if self._stop.is_set():
                    return False
            if not initial:
                self.metrics.reconnect_attempts.inc()
                log.info("NATS_RECONNECT_ATTEMPT", attempt=failures + 1)
            try:
                await self._connect_once()
            except Exception as exc:  # every failure is counted and retried
                failures += 1
                self._count_connect_failure(exc, failures, initial=initial)
                continue
            if initial:
                self.metrics.connection_established.inc()
                log.info("NATS_CONNECTION_ESTABLISHED", url=self.config.nats_url)
            else:
                self.metrics.connection_restored.inc()
                log.info("NATS_CONNECTION_RESTORED", failed_attempts=failures)
            self.fail_open = self.config.fail_open
            self._set_state("connected")
            await self._after_connect()
            return True
        return False

    def _count_connect_failure(self, exc: BaseException, failures: int, *, initial: bool) -> None:
        reason = reason_of(exc)
        cluster = self.config.nats_cluster
        if initial:
            self.metrics.connect_failures.labels(reason, cluster, "initial_connect").inc()
        else:
            attempt = self.metrics.reconnect_attempt_label(failures)
            self.metrics.reconnect_failures.labels(reason, cluster, attempt).inc()
        limit = self.config.max_reconnect_attempts
        log.warning(
            "nats_connect_failed",
            reason=reason,
            attempt=failures,
            initial=initial,
            error=str(exc) or type(exc).__name__,
        )
        if failures == limit:
            self.metrics.reconnection_exhausted.inc()
            self.fail_open = True
            self._set_state("disconnected")
            log.error("NATS_RECONNECTION_EXHAUSTED", attempts=failures, fail_open=True)
        elif failures < limit:
            self._set_state("reconnecting")

    async def _connect_once(self) -> None:
        await self.faults.apply("connect", self.config.connect_timeout)
        token = object()

        async def gone() -> None:
            if self._token is token and not self._lost.is_set():
                self._lost.set()

        seen: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            seen.append(exc)
            log.debug("nats_client_error", error=str(exc) or type(exc).__name__)

        nc = NATS()
        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=[self.config.nats_url],
                    name="beamline-router",
                    allow_reconnect=False,
                    # One pass over the server list, no client-side waits: our loop backs off.
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0,
                    connect_timeout=self.config.connect_timeout,
                    ping_interval=self.config.ping_interval,  # type: ignore[arg-type]
                    max_outstanding_pings=self.config.max_outstanding_pings,
                    disconnected_cb=gone,
                    closed_cb=gone,
                    error_cb=on_error,
                ),
                self.config.connect_timeout * 2 + 1,
            )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 1.0)
            if isinstance(exc, nats.errors.NoServersError) and seen:
                raise seen[-1] from exc  # the socket error says why, NoServersError does not
            raise
        self._lost.clear()
        self._token = token
        self.nc = nc
        self.js = nc.jetstream(timeout=self.config.ack_timeout)
        self.generation += 1

    async def _after_connect(self) -> None:
        # Topology first, so the consumer's first subscribe does not race stream creation.
        if not self._topology_ready:
            try:
                await self.ensure_topology(self.js)
            except Exception as exc:
                log.error("ensure_topology_failed", reason=reason_of(exc), error=str(exc))
        self._connected.set()
        await self.flush_pending()

    async def stop(self) -> None:
        self._stop.set()
        self._connected.clear()
        self._token = None
        nc, self.nc = self.nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.drain(), 3.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 2.0)

    # ------------------------------------------------------------------ topology
    async def ensure_topology(self, js: JetStreamContext | None = None) -> None:
        """Create the decide and DLQ streams if missing, and create/update the durable consumer."""
        js = js or self._require_js()
        c = self.config
        storage = StorageType.FILE if c.stream_storage == "file" else StorageType.MEMORY
        for name, subject in ((c.stream, c.subject), (c.dlq_stream, c.dlq_subject)):
            try:
                await js.stream_info(name)
            except nats.js.errors.NotFoundError:
                await js.add_stream(StreamConfig(name=name, subjects=[subject], storage=storage))
                log.info("stream_created", stream=name, subject=subject)
        await js.add_consumer(c.stream, self.consumer_config())
        self._topology_ready = True
        log.info("consumer_ready", stream=c.stream, consumer=c.consumer, max_deliver=c.max_deliver)

    def consumer_config(self) -> ConsumerConfig:
        c = self.config
        backoff = None
        if c.consumer_backoff and c.backoff:
            backoff = list(c.backoff[: max(c.max_deliver - 1, 1)])
        return ConsumerConfig(
            durable_name=c.consumer,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=c.ack_wait,
            max_deliver=c.max_deliver,
            backoff=backoff,
            filter_subject=c.subject,
            max_ack_pending=max(c.max_inflight * MAX_ACK_PENDING_FACTOR, 1000),
        )

    def _require_js(self) -> JetStreamContext:
        if not self.connected or self.js is None:
            raise NotConnected()
        return self.js

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        """Bind to the existing durable consumer; a deleted consumer/stream is a counted failure."""
        c = self.config
        try:
            await self.faults.apply("subscribe", c.ack_timeout)
            js = self._require_js()
            await js.consumer_info(c.stream, c.consumer)
            psub = await js.pull_subscribe_bind(consumer=c.consumer, stream=c.stream)
        except Exception as exc:
            reason = reason_of(exc)
            self.metrics.subscribe_failures.labels(reason, c.subject, c.stream, c.consumer).inc()
            log.warning(
                "nats_subscribe_failed", reason=reason, error=str(exc) or type(exc).__name__
            )
            raise SubscribeFailed(reason) from exc
        self.metrics.subscribe_total.inc()
        log.info(
            "nats_subscribed", stream=c.stream, consumer=c.consumer, generation=self.generation
        )
        return psub

    async def consumer_info(self) -> ConsumerInfo:
        js = self._require_js()
        return await js.consumer_info(self.config.stream, self.config.consumer)

    async def health_check(self) -> bool:
        """PING/PONG round trip; counted ok/error."""
        ok = False
        nc = self.nc
        if self.connected and nc is not None:
            try:
                await nc.flush(timeout=max(self.config.ack_timeout, 0.5))  # type: ignore[arg-type]
                ok = True
            except Exception:
                ok = False
        self.metrics.health_checks.labels("ok" if ok else "error").inc()
        return ok

    # ------------------------------------------------------------------ ACK / NAK
    async def ack(self, msg: Msg, *, term: bool = False) -> bool:
        """ACK (or TERM) confirmed by the server; failures counted by reason, never queued."""
        reason = await self._confirm("ack", msg, TERM if term else ACK)
        if reason is None:
            self.metrics.ack_total.inc()
            return True
        c = self.config
        self.metrics.ack_failures.labels(reason, c.subject, c.stream, c.consumer).inc()
        log.warning("nats_ack_failed", reason=reason, term=term)
        return False

    async def nak(self, msg: Msg, delay: float) -> bool:
        """NAK with redelivery delay, confirmed by the server."""
        payload = b"-NAK"
        if delay > 0:
            payload += b' {"delay": %d}' % int(delay * 1_000_000_000)
        reason = await self._confirm("nak", msg, payload)
        if reason is None:
            self.metrics.nak_total.inc()
            return True
        self.metrics.nak_failures.labels(reason, self.config.subject, self.config.stream).inc()
        log.warning("nats_nak_failed", reason=reason)
        return False

    async def _confirm(self, op: str, msg: Msg, payload: bytes) -> str | None:
        # Same wire exchange as Msg.ack_sync (request on the ack subject, empty reply), but on the
        # current connection, so a message fetched before a reconnect can still be acknowledged.
        try:
            await self.faults.apply(op, self.config.ack_timeout)
            nc = self.nc
            if not self.connected or nc is None:
                raise NotConnected()
            await nc.request(msg.reply, payload, timeout=self.config.ack_timeout)
        except Exception as exc:
            return reason_of(exc)
        return None

    # ------------------------------------------------------------------ publish
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
            return "sent"
        if not self.connected:
            if not self.fail_open:
                self._enqueue(op)
                return "queued"
            log.warning("nats_publish_dropped_fail_open", kind=op.kind, subject=op.label_subject)
        return "failed"

    async def _attempt(self, op: PendingOp, *, retry_count: str) -> str | None:
        m = self.metrics
        started = time.monotonic()
        try:
            await self.faults.apply(op.kind, self.config.publish_timeout)
            nc = self.nc
            if not self.connected or nc is None or self.js is None:
                raise NotConnected()
            if op.kind == "publish":
                await nc.publish(op.subject, op.payload, headers=op.headers)
            else:
                await self.js.publish(
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
            self._count_publish_failure(op, reason)
            return reason
        m.publish_latency.set(time.monotonic() - started)
        m.publish_attempts.labels("success", retry_count).inc()
        if op.kind == "publish":
            m.publish_total.inc()
        else:
            m.publish_with_ack_total.inc()
        return None

    def _count_publish_failure(self, op: PendingOp, reason: str) -> None:
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
        while self.queue and self.connected:
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

    def describe(self) -> dict[str, Any]:
        return {
            "state": self.metrics.connection_state,
            "generation": self.generation,
            "fail_open": self.fail_open,
            "pending_operations": len(self.queue),
        }
