"""The embedded Toxiproxy-compatible server, with the proxies the router reaches NATS through
(single node: `router_nats`; a cluster: each node's client proxy and every route proxy)."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx

from harness.probes import probe_toxiproxy
from harness.stack import cluster
from harness.stack.component import Component, ScrapeJob, StackContext

PROXIES = ("router_nats",)
"""Proxy names of a single-node slot; each gets its own listen port (a port name of this
component)."""


def proxy_names(ctx: StackContext) -> tuple[str, ...]:
    if ctx.options.clustered:
        return tuple(cluster.proxy_names(ctx.options.nats_cluster))
    return PROXIES


class Toxiproxy(Component):
    name = "toxiproxy"
    port_names = ("main", *PROXIES)

    def ports_needed(self, ctx: StackContext) -> tuple[str, ...]:
        return ("main", *proxy_names(ctx))

    def _upstream(self, ctx: StackContext, proxy: str) -> str:
        if not ctx.options.clustered:
            return ctx.address("nats")
        kind, *nodes = proxy.split("_")
        if kind == "nats":  # a node's client proxy
            return ctx.address(cluster.component_name(nodes[0]))
        return ctx.address(cluster.component_name(nodes[1]), "cluster")  # a route to nodes[1]

    def proxies(self, ctx: StackContext) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "listen": ctx.address(self.name, name),
                "upstream": self._upstream(ctx, name),
                "enabled": True,
            }
            for name in proxy_names(ctx)
        ]

    def command(self, ctx: StackContext) -> list[str]:
        config = ctx.directory(self.name) / "proxies.json"
        config.write_text(json.dumps(self.proxies(ctx), indent=2))
        return [
            sys.executable,
            "-m",
            "harness.toxiproxy_server",
            "--host",
            ctx.host,
            "--port",
            str(ctx.port(self.name)),
            "--config",
            str(config),
            "--proxy-metrics",
        ]

    async def ready(self, ctx: StackContext, client: httpx.AsyncClient) -> str:
        return await probe_toxiproxy(client, ctx.url(self.name), list(proxy_names(ctx)))

    def target_fields(self, ctx: StackContext) -> dict[str, Any]:
        return {
            "toxiproxy_url": ctx.url(self.name),
            "proxies": {
                p["name"]: {"listen": p["listen"], "upstream": p["upstream"]}
                for p in self.proxies(ctx)
            },
        }

    def scrape_jobs(self, ctx: StackContext) -> list[ScrapeJob]:
        return [ScrapeJob("toxiproxy", ctx.address(self.name))]
