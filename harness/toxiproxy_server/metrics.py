"""Toxiproxy's per-proxy byte counters for /metrics, counted when a connection ends (as in Go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, generate_latest

if TYPE_CHECKING:
    from harness.toxiproxy_server.connection import Connection
    from harness.toxiproxy_server.proxy import Proxy

_LABELS = ["direction", "proxy", "listener", "upstream"]


class ProxyMetrics:
    """The `-proxy-metrics` collectors, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "toxiproxy_proxy_received_bytes",
            "Bytes read from the source socket of a link",
            _LABELS,
            registry=self.registry,
        )
        self.sent = Counter(
            "toxiproxy_proxy_sent_bytes",
            "Bytes written to the destination socket of a link",
            _LABELS,
            registry=self.registry,
        )

    def record(self, proxy: Proxy, conn: Connection) -> None:
        for direction, link in conn.links.items():
            labels = (direction, proxy.name, proxy.listen, proxy.upstream)
            self.received.labels(*labels).inc(link.received)
            self.sent.labels(*labels).inc(link.sent())

    def render(self) -> bytes:
        return generate_latest(self.registry)
