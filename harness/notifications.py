"""The notification receiver's record, typed: what Alertmanager actually delivered, and where.

The harness hosts the receiver in the local stack (`harness.stack.webhook_receiver`); against
an external stack the target names one. Each notification keeps the receiver path it came
through, so a misroute is visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.errors import ReceiverError, describe
from harness.http import async_client


@dataclass(frozen=True)
class NotifiedAlert:
    labels: dict[str, str]
    status: str
    starts_at: str | None = None
    ends_at: str | None = None


@dataclass(frozen=True)
class Notification:
    """One webhook POST from Alertmanager: when, through which receiver, which alerts."""

    received_at: float
    receiver: str
    status: str
    alerts: list[NotifiedAlert] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received_at": self.received_at,
            "receiver": self.receiver,
            "status": self.status,
            "alerts": [a.__dict__ for a in self.alerts],
        }


def parse_notification(raw: dict[str, Any]) -> Notification:
    payload = raw.get("payload") or {}
    return Notification(
        received_at=float(raw["received_at"]),
        receiver=str(raw.get("receiver", "")),
        status=str(payload.get("status", "")),
        alerts=[
            NotifiedAlert(
                labels=dict(a.get("labels") or {}),
                status=str(a.get("status", "")),
                starts_at=a.get("startsAt"),
                ends_at=a.get("endsAt"),
            )
            for a in payload.get("alerts") or []
        ],
    )


class ReceiverAPI:
    """The notification receiver's read side."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    async def notifications(self, since: float = 0.0) -> list[Notification]:
        url = f"{self.url}/notifications"
        try:
            async with async_client(self.timeout) as client:
                response = await client.get(url)
            response.raise_for_status()
            raw = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ReceiverError(f"GET {url}: {describe(exc)}") from exc
        return [n for n in map(parse_notification, raw) if n.received_at >= since]
