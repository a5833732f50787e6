"""Stream/consumer topology: create the decide and DLQ streams, create/update the durable pull
consumer from the settings, and bind to it (a missing consumer/stream is a counted failure)."""

from __future__ import annotations

import nats.js.errors
import structlog
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
from router.faults import FaultHook
from router.metrics import Metrics
from router.reasons import reason_of
from router.supervisor import Supervisor

log = structlog.get_logger(component="router.topology")

MAX_ACK_PENDING_FACTOR = 20


class SubscribeFailed(Exception):
    """Binding to the durable consumer failed; `reason` is already counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def consumer_config(c: Config) -> ConsumerConfig:
    """The durable decide consumer: explicit ACK, max_deliver, optional server-side backoff."""
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


class Topology:
    """What the router expects to exist on the server, and the binding to it."""

    def __init__(
        self, config: Config, metrics: Metrics, faults: FaultHook, link: Supervisor
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.faults = faults
        self.link = link
        self.ready = False

    async def ensure(self, js: JetStreamContext | None = None) -> None:
        """Create the decide and DLQ streams if missing, and create/update the durable consumer."""
        js = js or self.link.jetstream()
        c = self.config
        storage = StorageType.FILE if c.stream_storage == "file" else StorageType.MEMORY
        for name, subject in ((c.stream, c.subject), (c.dlq_stream, c.dlq_subject)):
            try:
                await js.stream_info(name)
            except nats.js.errors.NotFoundError:
                await js.add_stream(
                    StreamConfig(
                        name=name,
                        subjects=[subject],
                        storage=storage,
                        num_replicas=c.stream_replicas,
                    )
                )
                log.info("stream_created", stream=name, subject=subject, replicas=c.stream_replicas)
        await js.add_consumer(c.stream, consumer_config(c))
        self.ready = True
        log.info("consumer_ready", stream=c.stream, consumer=c.consumer, max_deliver=c.max_deliver)

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        """Bind to the existing durable consumer; a deleted consumer/stream is a counted failure."""
        c = self.config
        try:
            await self.faults.apply("subscribe", c.ack_timeout)
            js = self.link.jetstream()
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
            "nats_subscribed", stream=c.stream, consumer=c.consumer, generation=self.link.generation
        )
        return psub

    async def consumer_info(self) -> ConsumerInfo:
        return await self.link.jetstream().consumer_info(self.config.stream, self.config.consumer)
