"""The proxies and the API's semantics over them: create, update, populate, reset, toxics.

HTTP-free, so the same rules serve the API, the `--config` file and tests. Changes that bind or
close listeners are serialised by one lock; toxic changes are synchronous and so already atomic.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from harness.toxiproxy_server import jsonbody
from harness.toxiproxy_server.addresses import resolved_string
from harness.toxiproxy_server.chain import Toxic
from harness.toxiproxy_server.connection import Connection
from harness.toxiproxy_server.errors import PROXY_EXISTS, PROXY_NOT_FOUND, ApiError, bad_body
from harness.toxiproxy_server.metrics import ProxyMetrics
from harness.toxiproxy_server.proxy import Proxy

log = structlog.get_logger("toxiproxy.collection")

_PROXY_FIELDS: dict[str, jsonbody.Kind] = {
    "name": "string",
    "listen": "string",
    "upstream": "string",
    "enabled": "bool",
}


class PopulateError(Exception):
    """A /populate failure, carrying the proxies created before it (they are not rolled back)."""

    def __init__(self, error: ApiError, proxies: list[Proxy] | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.proxies = proxies


class ProxyCollection:
    """All proxies by name."""

    def __init__(self, seed: int | None = None, metrics: ProxyMetrics | None = None) -> None:
        self.proxies: dict[str, Proxy] = {}
        self._seed = seed
        self._metrics = metrics
        self._lock = asyncio.Lock()

    def _new(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(name, listen, upstream, seed=self._seed, on_finish=self._finished)

    def _finished(self, proxy: Proxy, conn: Connection) -> None:
        if self._metrics is not None:
            self._metrics.record(proxy, conn)

    def to_json(self) -> dict[str, Any]:
        return {name: self.proxies[name].to_json() for name in sorted(self.proxies)}

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, PROXY_NOT_FOUND)
        return proxy

    async def _differs(self, proxy: Proxy, listen: str, upstream: str) -> bool:
        """Go's Proxy.Differs: resolved listen or upstream string changed."""
        return await resolved_string(listen) != proxy.listen or upstream != proxy.upstream

    async def create(self, body: Any) -> Proxy:
        fields = jsonbody.fields(body, _PROXY_FIELDS, "Proxy")
        name, upstream = fields.get("name", ""), fields.get("upstream", "")
        if not name:
            raise ApiError(400, "missing required field: name")
        if not upstream:
            raise ApiError(400, "missing required field: upstream")
        async with self._lock:
            if name in self.proxies:
                raise ApiError(409, PROXY_EXISTS)
            proxy = self._new(name, fields.get("listen", ""), upstream)
            if fields.get("enabled", True):
                await proxy.start()
            self.proxies[name] = proxy
            return proxy

    async def update(self, name: str, body: Any) -> Proxy:
        """Partial update: omitted fields are kept; a changed address restarts the proxy."""
        proxy = self.get(name)
        fields = jsonbody.fields(body, _PROXY_FIELDS, "Proxy")
        async with self._lock:
            listen = fields.get("listen", proxy.listen)
            upstream = fields.get("upstream", proxy.upstream)
            enabled = fields.get("enabled", proxy.enabled)
            if await self._differs(proxy, listen, upstream):
                await proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
            if enabled and not proxy.enabled:
                await proxy.start()
            elif not enabled and proxy.enabled:
                await proxy.stop()
            return proxy

    async def delete(self, name: str) -> None:
        async with self._lock:
            proxy = self.get(name)
            await proxy.stop()
            del self.proxies[name]

    async def populate(self, body: Any) -> list[Proxy]:
        """Create or replace each entry in order; all are checked before anything changes."""
        if not isinstance(body, list):
            error = bad_body(
                f"json: cannot unmarshal {jsonbody.json_type(body)} into Go value of type []Proxy"
            )
            raise PopulateError(error, None)
        try:
            entries = [jsonbody.fields(item, _PROXY_FIELDS, "Proxy") for item in body]
        except ApiError as error:
            raise PopulateError(error, None) from None
        for index, entry in enumerate(entries, start=1):
            for required in ("name", "upstream"):
                if not entry.get(required):
                    error = ApiError(400, f"missing required field: {required} at proxy {index}")
                    raise PopulateError(error, None)
        done: list[Proxy] = []
        async with self._lock:
            for entry in entries:
                try:
                    done.append(await self._populate_one(entry))
                except ApiError as error:
                    raise PopulateError(error, done or None) from None
        return done

    async def _populate_one(self, entry: dict[str, Any]) -> Proxy:
        name, listen, upstream = entry["name"], entry.get("listen", ""), entry["upstream"]
        existing = self.proxies.get(name)
        if existing is not None:
            if not await self._differs(existing, listen, upstream):
                return existing  # unchanged: toxics, connections and enabled state are kept
            await existing.stop()
        proxy = self._new(name, listen, upstream)
        if entry.get("enabled", True):
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (closing links that had a timeout toxic)."""
        async with self._lock:
            for name in sorted(self.proxies):
                proxy = self.proxies[name]
                if not proxy.enabled:
                    await proxy.start()
                proxy.remove_all_toxics()

    async def close(self) -> None:
        """Stop every proxy (server shutdown)."""
        async with self._lock:
            for proxy in self.proxies.values():
                await proxy.stop()

    # -- toxics --------------------------------------------------------------------------------

    def add_toxic(self, proxy_name: str, raw: bytes) -> Toxic:
        proxy = self.get(proxy_name)
        toxic = proxy.toxics.parse_new(jsonbody.decode(raw))
        proxy.add_toxic(toxic)
        log.info(
            "toxic_added",
            proxy=proxy.name,
            toxic=toxic.name,
            type=toxic.kind.name,
            stream=toxic.direction,
            toxicity=toxic.toxicity,
            **toxic.attributes,
        )
        return toxic

    def update_toxic(self, proxy_name: str, toxic_name: str, raw: bytes) -> Toxic:
        proxy = self.get(proxy_name)
        toxic = proxy.toxics.get(toxic_name)
        attributes, toxicity = proxy.toxics.parse_update(toxic, jsonbody.decode(raw))
        proxy.update_toxic(toxic, attributes, toxicity)
        log.info(
            "toxic_updated", proxy=proxy.name, toxic=toxic.name, toxicity=toxicity, **attributes
        )
        return toxic

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        proxy = self.get(proxy_name)
        toxic = proxy.toxics.get(toxic_name)
        proxy.remove_toxic(toxic)
        log.info("toxic_removed", proxy=proxy.name, toxic=toxic.name)
