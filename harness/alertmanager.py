"""Typed access to Alertmanager's v2 API: which alerts it holds, and in which state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from harness.errors import AlertmanagerError, describe
from harness.http import async_client


@dataclass(frozen=True)
class HeldAlert:
    """One alert as Alertmanager holds it: `state` active, suppressed or unprocessed, and what
    suppresses it (silences, inhibiting alerts), with the receivers its routing chose."""

    labels: dict[str, str]
    state: str
    silenced_by: list[str] = field(default_factory=list)
    inhibited_by: list[str] = field(default_factory=list)
    receivers: list[str] = field(default_factory=list)
    starts_at: str | None = None


class AlertmanagerAPI:
    """One Alertmanager server."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.url}{path}"
        try:
            async with async_client(self.timeout) as client:
                response = await client.get(url, params=params)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AlertmanagerError(f"GET {url}: {describe(exc)}") from exc

    async def alerts(self, name: str) -> list[HeldAlert]:
        """Every alert named `name` it holds: active, silenced, inhibited or unprocessed."""
        raw = await self._get("/api/v2/alerts", {"filter": f'alertname="{name}"'})
        held = []
        for alert in raw or []:
            status = alert.get("status") or {}
            held.append(
                HeldAlert(
                    labels=dict(alert.get("labels") or {}),
                    state=str(status.get("state", "")),
                    silenced_by=list(status.get("silencedBy") or []),
                    inhibited_by=list(status.get("inhibitedBy") or []),
                    receivers=sorted(r["name"] for r in alert.get("receivers") or []),
                    starts_at=alert.get("startsAt"),
                )
            )
        return held

    async def config(self) -> dict[str, Any]:
        """The configuration it is running (as loaded, from `/api/v2/status`)."""
        status = await self._get("/api/v2/status")
        try:
            return yaml.safe_load((status.get("config") or {}).get("original", "")) or {}
        except yaml.YAMLError as exc:
            raise AlertmanagerError(f"{self.url}/api/v2/status: config is not YAML: {exc}") from exc
