"""The real Alertmanager (Debian package), clustering off, delivering to the harness's receiver.

Its config is `deploy/alertmanager/alertmanager.yml` with two changes: every webhook URL
points at the local receiver (same path, so each receiver stays tellable apart), and the
grouping timers are divided by the profile's time compression like the rules are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from harness.probes import probe_alertmanager
from harness.stack.binaries import find_binary
from harness.stack.component import Component, ScrapeJob, StackContext
from harness.timecompress import compress_duration

_TIMERS = ("group_wait", "group_interval", "repeat_interval")


def _compress_route(route: dict[str, Any], factor: float) -> dict[str, Any]:
    route = dict(route)
    for key in _TIMERS:
        if key in route:
            route[key] = compress_duration(str(route[key]), factor)
    if "routes" in route:
        route["routes"] = [_compress_route(r, factor) for r in route["routes"]]
    return route


def render_alertmanager_config(text: str, webhook_url: str, factor: float) -> dict[str, Any]:
    """The deploy config pointed at `webhook_url` and time-compressed by `factor`."""
    config = yaml.safe_load(text) or {}
    for receiver in config.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            path = urlsplit(str(hook.get("url", ""))).path or f"/alertmanager/{receiver['name']}"
            hook["url"] = webhook_url.rstrip("/") + path
    if "route" in config:
        config["route"] = _compress_route(config["route"], factor)
    return config


class Alertmanager(Component):
    name = "alertmanager"

    def source(self, ctx: StackContext) -> Path:
        return ctx.deploy_dir / "alertmanager" / "alertmanager.yml"

    def command(self, ctx: StackContext) -> list[str]:
        directory = ctx.directory(self.name)
        webhook = ctx.url("webhook") if ctx.has("webhook") else "http://127.0.0.1:9"
        config = render_alertmanager_config(
            self.source(ctx).read_text(), webhook, ctx.profile.time_compression
        )
        config_file = directory / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        return [
            find_binary("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address={ctx.address(self.name)}",
            "--cluster.listen-address=",
            "--log.level=info",
        ]

    async def ready(self, ctx: StackContext, client: httpx.AsyncClient) -> str:
        return await probe_alertmanager(client, ctx.url(self.name))

    def target_fields(self, ctx: StackContext) -> dict[str, Any]:
        return {"alertmanager_url": ctx.url(self.name)}

    def scrape_jobs(self, ctx: StackContext) -> list[ScrapeJob]:
        return [ScrapeJob("alertmanager", ctx.address(self.name))]
