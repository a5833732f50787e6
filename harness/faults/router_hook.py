"""A fault set in the router's own fault hook (`POST /faults` on its metrics port).

For failures a network fault cannot single out, such as ACKs failing while everything
else works. The hook has the shape of the original router's fault-injection module.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from pydantic import Field

from harness.errors import describe
from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent
from harness.specs.faults import RouterHookFault

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def hook_urls(metrics_urls: list[str]) -> list[str]:
    """`http://host:port/metrics` → `http://host:port/faults` for every router."""
    return [url.removesuffix("/metrics").rstrip("/") + "/faults" for url in metrics_urls]


class RouterHookDriver(FaultDriver):
    kind = "router_hook"
    spec_model = RouterHookFault
    through_toxiproxy = False
    spec: RouterHookFault

    async def capable(self) -> str | None:
        """Every router answers `GET /faults` with its hook enabled."""
        urls = hook_urls(self.ctx.target.router_metrics_urls)
        if not urls:
            return f"target {self.ctx.target.name} lists no router to hook into"
        for url in urls:
            try:
                response = await self.ctx.http.get(url)
            except httpx.HTTPError as exc:
                return f"GET {url}: {describe(exc)}"
            if response.status_code != 200:
                return (
                    f"router has no fault hook: GET {url} answered HTTP {response.status_code} "
                    "(the scenario needs a router with the fault hook, e.g. the reference "
                    "router started with --enable-fault-hook)"
                )
            try:
                enabled = bool(response.json().get("enabled"))
            except (ValueError, AttributeError):
                return f"GET {url}: not the fault hook's JSON: {response.text[:100]!r}"
            if not enabled:
                return f"router fault hook at {url} is disabled (start it with --enable-fault-hook)"
        return None

    def _urls(self) -> list[str]:
        urls = hook_urls(self.ctx.target.router_metrics_urls)
        if not urls:
            raise FaultNotInEffect(f"target {self.ctx.target.name} lists no router to hook into")
        return urls

    async def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.ctx.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise FaultNotInEffect(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise FaultNotInEffect(f"{method} {url}: HTTP {response.status_code} {response.text}")
        return response.json()

    async def apply(self) -> None:
        for url in self._urls():
            await self._json("POST", url, json=self.spec.hook_body())

    async def _armed(self) -> dict[str, dict[str, Any] | None]:
        """The armed fault per router; a router without a hook (404) can have none armed."""
        armed: dict[str, dict[str, Any] | None] = {}
        for url in self._urls():
            try:
                response = await self.ctx.http.get(url)
            except httpx.HTTPError as exc:
                raise FaultNotInEffect(f"GET {url}: {describe(exc)}") from exc
            if response.status_code == 404:
                armed[url] = None
                continue
            if response.status_code >= 400:
                raise FaultNotInEffect(f"GET {url}: HTTP {response.status_code} {response.text}")
            armed[url] = response.json().get("faults", {}).get(self.spec.operation)
        return armed

    async def read_back(self) -> dict[str, Any]:
        armed = await self._armed()
        missing = [
            url for url, fault in armed.items() if not fault or fault["mode"] != self.spec.mode
        ]
        if missing:
            raise FaultNotInEffect(f"{self.spec.operation} fault not armed at {', '.join(missing)}")
        return {"operation": self.spec.operation, "armed": armed}

    async def remove(self) -> None:
        for url in self._urls():
            await self._json("DELETE", f"{url}/{self.spec.operation}")

    async def prove_gone(self) -> dict[str, Any]:
        armed = await self._armed()
        left = [url for url, fault in armed.items() if fault]
        if left:
            raise FaultStillPresent(f"{self.spec.operation} fault still armed at {', '.join(left)}")
        return {"operation": self.spec.operation, "armed": armed}

    async def fallback(self) -> None:
        for url in self._urls():
            await self._json("DELETE", url)
