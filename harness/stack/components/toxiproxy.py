"""The embedded Toxiproxy-compatible server, with the proxies the router reaches NATS through."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx

from harness.probes import probe_toxiproxy
from harness.stack.component import Component, ScrapeJob, StackContext

PROXIES = ("router_nats",)
"""Proxy names; each gets its own listen port (a port name of this component)."""


class Toxiproxy(Component):
    name = "toxiproxy"
    port_names = ("main", *PROXIES)

    def proxies(self, ctx: StackContext) -> list[dict[str, Any]]:
        return [
            {
                "name": "router_nats",
                "listen": ctx.address(self.name, "router_nats"),
                "upstream": ctx.address("nats"),
                "enabled": True,
            }
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
        return await probe_toxiproxy(client, ctx.url(self.name), list(PROXIES))

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
