"""The harness-hosted webhook receiver Alertmanager delivers notifications to."""

from __future__ import annotations

import sys
from typing import Any

import httpx

from harness.probes import probe_webhook
from harness.stack.component import Component, ScrapeJob, StackContext


class Webhook(Component):
    name = "webhook"

    def record_path(self, ctx: StackContext) -> str:
        return str(ctx.directory(self.name) / "notifications.jsonl")

    def command(self, ctx: StackContext) -> list[str]:
        return [
            sys.executable,
            "-m",
            "harness.stack.webhook_receiver",
            "--host",
            ctx.host,
            "--port",
            str(ctx.port(self.name)),
            "--record",
            self.record_path(ctx),
        ]

    async def ready(self, ctx: StackContext, client: httpx.AsyncClient) -> str:
        return await probe_webhook(client, ctx.url(self.name))

    def target_fields(self, ctx: StackContext) -> dict[str, Any]:
        return {"webhook_url": ctx.url(self.name)}

    def scrape_jobs(self, ctx: StackContext) -> list[ScrapeJob]:
        return [ScrapeJob("harness-webhook", ctx.address(self.name))]
