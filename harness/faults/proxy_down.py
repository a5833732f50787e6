"""A Toxiproxy proxy disabled: its listener closed, live connections dropped."""

from __future__ import annotations

from typing import Any

import anyio

from harness.errors import ToxiproxyError
from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent
from harness.specs.faults import ProxyDownFault


async def connect_refused(listen: str) -> bool | None:
    """True when a TCP connect to `listen` is refused, None when we cannot tell from here."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    try:
        with anyio.fail_after(2):
            stream = await anyio.connect_tcp(host, int(port))
    except OSError as exc:  # anyio wraps the refusal; the cause says what happened
        return True if isinstance(exc.__cause__ or exc, ConnectionRefusedError) else None
    except (TimeoutError, ValueError):
        return None
    await stream.aclose()
    return False


class ProxyDownDriver(FaultDriver):
    kind = "proxy_down"
    spec_model = ProxyDownFault
    spec: ProxyDownFault

    async def capable(self) -> str | None:
        return await proxy_missing(self)

    async def apply(self) -> None:
        await self.ctx.toxiproxy.set_enabled(self.spec.proxy, False)

    async def read_back(self) -> dict[str, Any]:
        proxy = await self.ctx.toxiproxy.proxy(self.spec.proxy)
        if proxy.get("enabled", True):
            raise FaultNotInEffect(f"proxy {self.spec.proxy} is still enabled")
        refused = await connect_refused(proxy["listen"])
        if refused is False:
            raise FaultNotInEffect(
                f"proxy {self.spec.proxy} disabled but {proxy['listen']} accepts"
            )
        return {"proxy": proxy, "connect_refused": refused}

    async def remove(self) -> None:
        await self.ctx.toxiproxy.set_enabled(self.spec.proxy, True)

    async def prove_gone(self) -> dict[str, Any]:
        proxy = await self.ctx.toxiproxy.proxy(self.spec.proxy)
        if not proxy.get("enabled", False):
            raise FaultStillPresent(f"proxy {self.spec.proxy} is still disabled")
        return {"proxy": proxy}


async def proxy_missing(driver: FaultDriver) -> str | None:
    """None when the driver's proxy exists on the target's Toxiproxy, else why not."""
    try:
        proxies = await driver.ctx.toxiproxy.proxies()
    except ToxiproxyError as exc:
        return str(exc)
    name = driver.spec.proxy
    if name not in proxies:
        return f"Toxiproxy at {driver.ctx.toxiproxy.url} has no proxy {name!r}"
    return None
