"""Reconnect supervision (catalogue §6.7): owns the NATS client, connects with our own exponential
backoff, notices loss, and after `--max-reconnect-attempts` failures counts exhaustion and enters
fail-open. Every other component reaches the wire through `client()` / `jetstream()`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import nats.errors
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from router.config import Config
from router.faults import FaultHook
from router.metrics import Metrics
from router.reasons import NotConnected, reason_of

log = structlog.get_logger(component="router.supervisor")

OnConnect = Callable[[JetStreamContext], Awaitable[None]]
OnReady = Callable[[], Awaitable[None]]


async def _nothing(*_: object) -> None:
    return None


class Supervisor:
    """States disconnected → reconnecting → connected; one `router_nats_connection_status` series.

    `on_connect(js)` runs on every new connection before the router counts as connected (topology
    first, so the consumer's first subscribe does not race stream creation); `on_ready()` runs
    right after (flush the publishes queued while disconnected).
    """

    def __init__(
        self,
        config: Config,
        metrics: Metrics,
        faults: FaultHook,
        *,
        on_connect: OnConnect = _nothing,
        on_ready: OnReady = _nothing,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.faults = faults
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.generation = 0
        self.fail_open = config.fail_open
        self._on_connect = on_connect
        self._on_ready = on_ready
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._stop = asyncio.Event()
        self._token: object | None = None

    # ------------------------------------------------------------------ state
    @property
    def connected(self) -> bool:
        nc = self.nc
        return self._connected.is_set() and nc is not None and nc.is_connected

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def client(self) -> NATS:
        """The live client, or NotConnected: the operation is not tried on the wire."""
        nc = self.nc
        if not self.connected or nc is None:
            raise NotConnected()
        return nc

    def jetstream(self) -> JetStreamContext:
        """The live JetStream context, or NotConnected."""
        js = self.js
        if not self.connected or js is None:
            raise NotConnected()
        return js

    def _set_state(self, state: str) -> None:
        previous = self.metrics.connection_state
        self.metrics.set_connection_state(state)
        if previous != state:
            log.info("nats_state", state=state, previous=previous)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # ------------------------------------------------------------------ supervision
    async def run(self) -> None:
        """Connect (retrying), then wait for loss and reconnect, until stop()."""
        if not await self._connect_loop(initial=True):
            return
        while not self._stop.is_set():
            await self._until_lost()
            if self._stop.is_set():
                return
            await self._handle_loss()
            if not await self._connect_loop(initial=False):
                return

    async def _until_lost(self) -> None:
        """The client's callbacks say when the connection is gone; a look at the client every
        ping interval also catches a close whose callbacks never ran (nats-py can hang
        flushing into a dead socket on a flapping link, and the router would then never
        reconnect)."""
        while not self._stop.is_set() and not self._lost.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._lost.wait(), max(self.config.ping_interval, 0.1))
            nc = self.nc
            if nc is not None and not nc.is_connected and not self._lost.is_set():
                log.warning("nats_loss_without_callback", generation=self.generation)
                self._lost.set()

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
            assert self.js is not None  # set by _connect_once
            await self._on_connect(self.js)
            self._connected.set()
            await self._on_ready()
            return True
        return False

    def _count_connect_failure(self, exc: BaseException, failures: int, *, initial: bool) -> None:
        """Count one failed attempt; at exactly the limit: exhausted + fail-open (retries go on)."""
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
                    servers=self.config.nats_servers,
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

    async def stop(self) -> None:
        self._stop.set()
        self._lost.set()  # wakes `_until_lost` at once
        self._connected.clear()
        self._token = None
        nc, self.nc = self.nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.drain(), 3.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 2.0)
