"""Confirmed ACK/NAK/TERM (catalogue §6.6, §6.8): each is a request the server answers, so a lost
acknowledgement is counted by reason instead of vanishing; never queued while disconnected."""

from __future__ import annotations

import structlog
from nats.aio.msg import Msg

from router.config import Config
from router.faults import FaultHook
from router.metrics import Metrics
from router.reasons import reason_of
from router.supervisor import Supervisor

log = structlog.get_logger(component="router.acks")

ACK = b"+ACK"
TERM = b"+TERM"
NAK = b"-NAK"


def nak_payload(delay: float) -> bytes:
    """`-NAK` with the redelivery delay in nanoseconds (none for a zero delay)."""
    if delay > 0:
        return NAK + b' {"delay": %d}' % int(delay * 1_000_000_000)
    return NAK


class Acknowledger:
    """ACK/TERM and NAK on the current connection, confirmed by the server."""

    def __init__(
        self, config: Config, metrics: Metrics, faults: FaultHook, link: Supervisor
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.faults = faults
        self.link = link

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
        reason = await self._confirm("nak", msg, nak_payload(delay))
        if reason is None:
            self.metrics.nak_total.inc()
            return True
        self.metrics.nak_failures.labels(reason, self.config.subject, self.config.stream).inc()
        log.warning("nats_nak_failed", reason=reason)
        return False

    async def _confirm(self, op: str, msg: Msg, payload: bytes) -> str | None:
        """None when confirmed, else the failure's reason.

        Same wire exchange as Msg.ack_sync (request on the ack subject, empty reply), but on the
        current connection, so a message fetched before a reconnect can still be acknowledged.
        """
        try:
            await self.faults.apply(op, self.config.ack_timeout)
            nc = self.link.client()
            await nc.request(msg.reply, payload, timeout=self.config.ack_timeout)
        except Exception as exc:
            return reason_of(exc)
        return None
