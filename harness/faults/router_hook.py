"""A fault set in the router's own fault hook (`POST /faults` on its metrics port).

For failures a network fault cannot single out, such as ACKs failing while everything
else works. The hook has the shape of the original router's fault-injection module.
"""

from __future__ import annotations

from typing import Any

import httpx

from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent
from harness.scenario import RouterHookFault


def hook_urls(metrics_urls: list[str]) -> list[str]:
    """`http://host:port/metrics` → `http://host:port/faults` for every router."""
    return [url.removesuffix("/metrics").rstrip("/") + "/faults" for url in metrics_urls]


class RouterHookDriver(FaultDriver):
    kind = "router_hook"
    spec: RouterHookFault

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

    async def _armed(self) -> dict[str, dict[str, Any]]:
        return {
            url: (await self._json("GET", url)).get("faults", {}).get(self.spec.operation)
            for url in self._urls()
        }

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
