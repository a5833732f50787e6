"""Wires the router together: connection supervisor, decide consumer and HTTP decide intake (one
Decider and usage emitter for both), monitor loop, HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from aiohttp import web

from router.backpressure import Backpressure, Inputs
from router.config import Config
from router.connection import Connection
from router.consumer import DecideConsumer
from router.faults import FaultHook
from router.http import make_app
from router.intake import Decider
from router.intake_http import HttpIntake
from router.metrics import Metrics
from router.reasons import reason_of
from router.usage import UsageEmitter

log = structlog.get_logger(component="router.app")


class Router:
    """One router process; `run()` returns after SIGTERM/SIGINT (or `stop()`)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics(config)
        self.faults = FaultHook(enabled=config.fault_hook)
        self.conn = Connection(config, self.metrics, self.faults)
        self.backpressure = Backpressure(config, self.metrics)
        decider = Decider(config, self.metrics)
        usage = UsageEmitter(config, self.conn)
        self.consumer = DecideConsumer(
            config, self.metrics, self.conn, self.backpressure, decider, usage
        )
        self.http_intake = HttpIntake(config, self.metrics, decider, self.backpressure, usage)
        self._stop = asyncio.Event()
        self._pending = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        c = self.config
        app = make_app(
            self.metrics,
            self.conn,
            self.faults,
            readyz=c.serve_readyz,
            decide=self.http_intake.handle,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, c.metrics_host, c.metrics_port)
        await site.start()
        log.info(
            "router_started",
            metrics=f"http://{c.metrics_host}:{c.metrics_port}/metrics",
            decide=f"http://{c.metrics_host}:{c.metrics_port}/decide",
            nats_url=c.nats_url,
            subject=c.subject,
            stream=c.stream,
            consumer=c.consumer,
            fault_hook=c.fault_hook,
            usage_subject=c.usage_subject if c.usage_events else None,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.stop)
        tasks = [
            asyncio.create_task(self.conn.run(), name="connection"),
            asyncio.create_task(self.consumer.run(), name="consumer"),
            asyncio.create_task(self._monitor(), name="monitor"),
        ]
        stop_wait = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait([*tasks, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stop_wait and task.exception() is not None:
                log.error("task_crashed", task=task.get_name(), error=repr(task.exception()))
        log.info("router_stopping")
        await self.consumer.stop()
        await self.conn.stop()
        for task in [*tasks, stop_wait]:
            task.cancel()
        await asyncio.gather(*tasks, stop_wait, return_exceptions=True)
        await runner.cleanup()
        log.info("router_stopped")

    async def _monitor(self) -> None:
        """Each interval: pending from consumer info, latency gauges, backpressure, health, and
        a flush of anything still queued while connected."""
        c = self.config
        subject, consumer = c.subject, c.consumer
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), c.monitor_interval)
            if self._stop.is_set():
                return
            try:
                await self._monitor_once(subject, consumer)
            except Exception:
                log.exception("monitor_failed")
            await self.conn.health_check()
            if self.conn.connected and self.conn.publisher.queue:
                # what a publish raced into the queue after the reconnect's flush
                await self.conn.flush_pending()

    async def _monitor_once(self, subject: str, consumer: str) -> None:
        m = self.metrics
        error = "none"
        if self.conn.connected:
            try:
                info = await self.conn.consumer_info()
                self._pending = int(info.num_pending or 0)
                m.pending_messages.labels(subject, consumer).set(self._pending)
                m.ack_pending_messages.labels(subject, consumer).set(int(info.num_ack_pending or 0))
            except Exception as exc:
                error = reason_of(exc)
                if error in ("consumer_not_found", "stream_not_found"):
                    self.consumer.request_resubscribe()
        else:
            error = "not_connected"
        m.jetstream_queries.labels("real_time", subject, error).inc()
        p50, p95, p99 = self.backpressure.window.percentiles((0.50, 0.95, 0.99))
        m.latency_p50.labels(subject).set(p50)
        m.latency_p95.labels(subject).set(p95)
        m.latency_p99.labels(subject).set(p99)
        self.backpressure.evaluate(Inputs(self._pending, p95, self.consumer.inflight))
