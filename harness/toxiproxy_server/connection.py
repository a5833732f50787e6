"""One accepted client connection: its upstream dial, its two sockets and its two links."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from typing import TYPE_CHECKING

import structlog

from harness.toxiproxy_server.addresses import parse_port, split_host_port
from harness.toxiproxy_server.errors import ApiError
from harness.toxiproxy_server.link import Link

if TYPE_CHECKING:
    from harness.toxiproxy_server.proxy import Proxy

log = structlog.get_logger("toxiproxy.connection")

# A black-holed upstream must not keep a client waiting forever (the Go server has no timeout).
DIAL_TIMEOUT = 5.0
_LINGER_ZERO = struct.pack("ii", 1, 0)


class Endpoint(asyncio.Protocol):
    """The protocol of one socket: the source of one link and the destination of the other."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.out_link: Link | None = None
        self.in_link: Link | None = None
        self.lost = False
        self._early: list[bytes] = []
        self._early_eof = False

    def attach(self, out_link: Link, in_link: Link) -> None:
        """Wire the links; reads then go straight to the outgoing link (no extra frame)."""
        self.out_link, self.in_link = out_link, in_link
        self.data_received = out_link.feed  # type: ignore[method-assign]
        if self.transport is not None:
            self.transport.set_protocol(self)  # uvloop caches the bound method: refresh it
        early, self._early = self._early, []
        for data in early:
            out_link.feed(data)
        if self._early_eof:
            out_link.feed_eof()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.pause_reading()  # type: ignore[attr-defined]  # until both links exist
        if self is self.conn.client:
            self.conn.accepted()

    def data_received(self, data: bytes) -> None:  # shadowed per instance by attach()
        if self.out_link is not None:
            self.out_link.feed(data)
            return
        # uvloop may start reading despite pause_reading() in connection_made: hold it back.
        self._early.append(data)
        if self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.out_link is not None:
            self.out_link.feed_eof()
        else:
            self._early_eof = True
        return True  # keep our write side open until the other link has flushed

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.conn.endpoint_lost(self)

    def pause_writing(self) -> None:
        if self.in_link is not None:
            self.in_link.dst_pause()

    def resume_writing(self) -> None:
        if self.in_link is not None:
            self.in_link.dst_resume()


class Connection:
    """A client connection through a proxy; torn down when both sockets are closed."""

    def __init__(self, proxy: Proxy, cid: int, rng_seed: str | None) -> None:
        self.proxy = proxy
        self.cid = cid
        self.rng_seed = rng_seed
        self.client = Endpoint(self)
        self.server: Endpoint | None = None
        self.links: dict[str, Link] = {}
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.finished = False

    def _rng(self, direction: str) -> random.Random:
        if self.rng_seed is None:
            return random.Random()
        return random.Random(f"{self.rng_seed}/{direction}")

    def accepted(self) -> None:
        self.proxy.connections.add(self)
        self.task = asyncio.get_running_loop().create_task(self._dial())

    async def _dial(self) -> None:
        """Connect upstream inside this connection's own task, so a slow dial blocks no one."""
        loop = asyncio.get_running_loop()
        upstream = self.proxy.upstream
        server = Endpoint(self)
        try:
            host, port_text = split_host_port(upstream)
            port = parse_port(port_text, upstream)
            async with asyncio.timeout(DIAL_TIMEOUT):
                await loop.create_connection(lambda: server, host or None, port)
        except Exception as exc:  # any dial failure: log it and close the client, never hang
            reason = exc.message if isinstance(exc, ApiError) else (str(exc) or type(exc).__name__)
            log.warning(
                "upstream_dial_failed",
                proxy=self.proxy.name,
                upstream=upstream,
                client=self._peer(),
                error=reason,
            )
            if self.client.lost:
                self._finish()
            elif self.client.transport is not None:
                self.client.transport.close()  # the client sees accept, then EOF, as with Go
            return
        self.server = server
        if self.closed:
            server.transport.abort()  # type: ignore[union-attr]
            return
        client_t, server_t = self.client.transport, server.transport
        assert client_t is not None and server_t is not None
        up = Link(self, "upstream", self._rng("upstream"))
        down = Link(self, "downstream", self._rng("downstream"))
        self.links = {"upstream": up, "downstream": down}
        chains = self.proxy.toxics.chains
        up.start(client_t, server_t, list(chains["upstream"]))
        down.start(server_t, client_t, list(chains["downstream"]))
        self.client.attach(up, down)
        server.attach(down, up)
        log.debug("connection_open", proxy=self.proxy.name, client=self._peer(), conn=self.cid)
        if self.client.lost:
            self.endpoint_lost(self.client)
        if not up.src_paused and not client_t.is_closing():
            client_t.resume_reading()
        if not down.src_paused and not server_t.is_closing():
            server_t.resume_reading()

    def _peer(self) -> str:
        transport = self.client.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        return f"{peer[0]}:{peer[1]}" if peer else "?"

    def endpoint_lost(self, endpoint: Endpoint) -> None:
        """A socket closed: its outgoing link sees EOF, its incoming link loses its destination."""
        if endpoint.out_link is not None:
            endpoint.out_link.feed_eof()
        if endpoint.in_link is not None:
            endpoint.in_link.dst_lost()
        if self.client.lost and (self.server is None or self.server.lost):
            if self.task is not None and not self.task.done() and not self.closed:
                return  # still dialling: _dial will close the client and finish
            self._finish()

    def abort(self) -> None:
        """Close both sockets at once (proxy disabled or deleted)."""
        self.closed = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
        for endpoint in (self.client, self.server):
            if endpoint is not None and endpoint.transport is not None and not endpoint.lost:
                endpoint.transport.abort()
        if self.server is None and self.client.lost:
            self._finish()

    def reset_peer(self) -> None:
        """Close both sockets with an RST (SO_LINGER 0), as the reset_peer toxic does."""
        for endpoint in (self.client, self.server):
            transport = endpoint.transport if endpoint is not None else None
            if transport is None or endpoint.lost:  # type: ignore[union-attr]
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            transport.abort()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        for link in self.links.values():
            link.close()
        self.proxy.connection_finished(self)
        log.debug("connection_closed", proxy=self.proxy.name, conn=self.cid)
