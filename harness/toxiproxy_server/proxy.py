"""One proxy: its listener, its live connections, and fanning toxic changes out to them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from harness.toxiproxy_server.addresses import bind_listener, bound_address, resolve
from harness.toxiproxy_server.chain import Toxic, ToxicChains
from harness.toxiproxy_server.connection import Connection, Endpoint

log = structlog.get_logger("toxiproxy.proxy")

# Called with (proxy, connection) when a connection is torn down, e.g. to count its bytes.
FinishHook = Callable[["Proxy", Connection], None]


class Proxy:
    """A named TCP proxy from `listen` to `upstream`; disabled: no listener, no connections."""

    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        *,
        seed: int | None = None,
        on_finish: FinishHook | None = None,
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicChains()
        self.connections: set[Connection] = set()
        self._seed = seed
        self._on_finish = on_finish
        self._server: asyncio.AbstractServer | None = None
        self._next_cid = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics.to_json(),
        }

    async def start(self) -> None:
        """Bind the stored listen address and keep the address actually bound."""
        if self._server is not None:
            return
        endpoint = await resolve(self.listen)
        sock = bind_listener(endpoint)
        try:
            self._server = await asyncio.get_running_loop().create_server(self._accept, sock=sock)
        except OSError:
            sock.close()
            raise
        self.listen = bound_address(sock)
        self.enabled = True
        log.info("proxy_started", proxy=self.name, listen=self.listen, upstream=self.upstream)

    async def stop(self) -> None:
        """Close the listener (the port is free on return) and every live connection."""
        server, self._server = self._server, None
        self.enabled = False
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.abort()
        if server is not None:
            try:
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)
            except TimeoutError:
                log.warning("listener_close_slow", proxy=self.name)
            log.info("proxy_stopped", proxy=self.name, listen=self.listen)

    def _accept(self) -> Endpoint:
        self._next_cid += 1
        rng_seed = None if self._seed is None else f"{self._seed}/{self.name}/{self._next_cid}"
        return Connection(self, self._next_cid, rng_seed).client

    def connection_finished(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if self._on_finish is not None:
            self._on_finish(self, conn)

    def _live_links(self, direction: str):
        for conn in list(self.connections):
            link = conn.links.get(direction)
            if link is not None:
                yield link

    def add_toxic(self, toxic: Toxic) -> None:
        """Append to the chain and to every live link of that direction at once."""
        self.toxics.add(toxic)
        for link in self._live_links(toxic.direction):
            link.add_toxic(toxic)

    def update_toxic(self, toxic: Toxic, attributes: dict[str, Any], toxicity: float) -> None:
        toxic.attributes = attributes
        toxic.toxicity = toxicity
        for link in self._live_links(toxic.direction):
            link.update_toxic(toxic)

    def remove_toxic(self, toxic: Toxic) -> None:
        self.toxics.remove(toxic)
        for link in self._live_links(toxic.direction):
            link.remove_toxic(toxic)

    def remove_all_toxics(self) -> None:
        for toxic in list(self.toxics):
            self.remove_toxic(toxic)
