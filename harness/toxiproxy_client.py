"""Toxiproxy API client: toxiproxy-python's consumer, bound to one target, run off the event loop.

toxiproxy-python keeps host and port as class attributes of `APIConsumer`; setting them would
leak between targets. Each client here uses its own subclass with its own host and port, so
two targets can be driven at once, and every call has a timeout (the library sets none).
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import urlsplit

import anyio
import requests
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.errors import ToxiproxyError

__all__ = ["ToxiproxyClient", "ToxiproxyError"]


class ToxiproxyClient:
    """Async access to one Toxiproxy server."""

    def __init__(self, url: str, timeout: float = 5.0):
        parts = urlsplit(url)
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._api: type[APIConsumer] = type(
            "TargetAPIConsumer",
            (APIConsumer,),
            {"host": parts.hostname, "port": parts.port or 8474},
        )

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        kwargs: dict[str, Any] = {"timeout": self.timeout}
        if body is not None:
            kwargs["json"] = body
        call = partial(getattr(self._api, method), path, **kwargs)
        where = f"{method.upper()} {self.url}{path}"
        try:
            response = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except (NotFound, InvalidToxic, ProxyExists) as exc:
            raise ToxiproxyError(f"{where}: {_text(exc)}") from exc
        except requests.RequestException as exc:
            raise ToxiproxyError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:  # the library lets 5xx through silently
            raise ToxiproxyError(f"{where}: HTTP {response.status_code} {response.text.strip()}")
        return response.json() if response.content else None

    async def version(self) -> str:
        body = await self._call("get", "/version")
        return body.get("version", "?") if isinstance(body, dict) else str(body)

    async def proxies(self) -> dict[str, dict[str, Any]]:
        return await self._call("get", "/proxies")

    async def proxy(self, name: str) -> dict[str, Any]:
        return await self._call("get", f"/proxies/{name}")

    async def create_proxy(
        self, name: str, listen: str, upstream: str, enabled: bool = True
    ) -> dict[str, Any]:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return await self._call("post", "/proxies", body)

    async def delete_proxy(self, name: str) -> None:
        await self._call("delete", f"/proxies/{name}")

    async def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        return await self._call("post", f"/proxies/{name}", {"enabled": enabled})

    async def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return await self._call("get", f"/proxies/{proxy}/toxics")

    async def add_toxic(
        self,
        proxy: str,
        *,
        name: str,
        type: str,
        stream: str,
        toxicity: float,
        attributes: dict[str, int | str],
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        return await self._call("post", f"/proxies/{proxy}/toxics", body)

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._call("delete", f"/proxies/{proxy}/toxics/{name}")

    async def reset(self) -> None:
        """Every proxy enabled, every toxic removed: the fallback that heals everything."""
        await self._call("post", "/reset")


def _text(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    return raw.decode(errors="replace").strip() if isinstance(raw, bytes) else str(raw)
