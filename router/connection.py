"""The router's one NATS connection, composed of its concerns: reconnect supervision
(`supervisor`), stream/consumer topology (`topology`), confirmed ACK/NAK (`acks`) and publishing
with the offline queue (`publisher`). The consumer, monitor and HTTP side only see this class."""

from __future__ import annotations

from collections import deque
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from router.acks import Acknowledger
from router.config import Config
from router.faults import FaultHook
from router.metrics import Metrics
from router.publisher import PendingOp, Publisher
from router.reasons import reason_of
from router.supervisor import Supervisor
from router.topology import Topology

log = structlog.get_logger(component="router.connection")


class Connection:
    """Owns the NATS client; every wire operation of the router goes through here."""

    def __init__(self, config: Config, metrics: Metrics, faults: FaultHook) -> None:
        self.config = config
        self.metrics = metrics
        self.link = Supervisor(
            config, metrics, faults, on_connect=self._on_connect, on_ready=self._on_ready
        )
        self.topology = Topology(config, metrics, faults, self.link)
        self.acks = Acknowledger(config, metrics, faults, self.link)
        self.publisher = Publisher(config, metrics, faults, self.link)

    async def _on_connect(self, js: JetStreamContext) -> None:
        # Topology first, so the consumer's first subscribe does not race stream creation.
        if self.topology.ready:
            return
        try:
            await self.topology.ensure(js)
        except Exception as exc:
            log.error("ensure_topology_failed", reason=reason_of(exc), error=str(exc))

    async def _on_ready(self) -> None:
        await self.publisher.flush_pending()

    # ------------------------------------------------------------------ state
    @property
    def connected(self) -> bool:
        return self.link.connected

    @property
    def generation(self) -> int:
        """Bumped on every new connection; a subscription from an older one must be rebound."""
        return self.link.generation

    @property
    def fail_open(self) -> bool:
        return self.link.fail_open

    @property
    def queue(self) -> deque[PendingOp]:
        return self.publisher.queue

    async def wait_connected(self) -> None:
        await self.link.wait_connected()

    def describe(self) -> dict[str, Any]:
        return {
            "state": self.metrics.connection_state,
            "generation": self.link.generation,
            "fail_open": self.link.fail_open,
            "pending_operations": len(self.publisher.queue),
        }

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        await self.link.run()

    async def stop(self) -> None:
        await self.link.stop()

    async def health_check(self) -> bool:
        return await self.link.health_check()

    # ------------------------------------------------------------------ topology
    async def ensure_topology(self, js: JetStreamContext | None = None) -> None:
        await self.topology.ensure(js)

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        return await self.topology.subscribe()

    async def consumer_info(self) -> ConsumerInfo:
        return await self.topology.consumer_info()

    # ------------------------------------------------------------------ ACK / NAK
    async def ack(self, msg: Msg, *, term: bool = False) -> bool:
        return await self.acks.ack(msg, term=term)

    async def nak(self, msg: Msg, delay: float) -> bool:
        return await self.acks.nak(msg, delay)

    # ------------------------------------------------------------------ publish
    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        label_subject: str,
        headers: dict[str, str] | None = None,
    ) -> str:
        return await self.publisher.publish(
            subject, payload, label_subject=label_subject, headers=headers
        )

    async def publish_with_ack(
        self, subject: str, payload: bytes, *, headers: dict[str, str] | None = None
    ) -> str:
        return await self.publisher.publish_with_ack(subject, payload, headers=headers)

    async def flush_pending(self) -> None:
        await self.publisher.flush_pending()
