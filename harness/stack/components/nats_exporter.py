"""The embedded NATS exporter (`python -m harness.exporter`): polls every node's monitoring
endpoints and serves them under the official prometheus-nats-exporter's metric names."""

from __future__ import annotations

import sys

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.probes import ProbeFailed
from harness.stack import cluster
from harness.stack.component import Component, ScrapeJob, StackContext


def monitored(ctx: StackContext) -> list[tuple[str, str]]:
    """(server name, monitoring URL) of every NATS server of the stack."""
    if not ctx.options.clustered:
        return [("harness-local", ctx.url("nats", "monitor"))]
    return [
        (cluster.server_name(n), ctx.url(cluster.component_name(n), "monitor"))
        for n in cluster.node_names(ctx.options.nats_cluster)
    ]


class NatsExporter(Component):
    name = "nats-exporter"

    def command(self, ctx: StackContext) -> list[str]:
        interval = max(0.5, ctx.profile.scrape_interval)
        return [
            sys.executable,
            "-m",
            "harness.exporter",
            "--host",
            ctx.host,
            "--port",
            str(ctx.port(self.name)),
            "--interval",
            f"{interval:g}",
            *(f"--server={name}={url}" for name, url in monitored(ctx)),
        ]

    async def ready(self, ctx: StackContext, client: httpx.AsyncClient) -> str:
        url = f"{ctx.url(self.name)}/metrics"
        try:
            response = await client.get(url)
        except httpx.HTTPError as exc:
            raise ProbeFailed(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise ProbeFailed(f"GET {url}: HTTP {response.status_code}")
        answering = sorted(
            sample.labels["server_id"]
            for family in text_string_to_metric_families(response.text)
            if family.name == "harness_nats_exporter_poll_ok"
            for sample in family.samples
            if sample.labels.get("endpoint") == "varz" and sample.value == 1
        )
        if not answering:
            raise ProbeFailed(f"GET {url}: no NATS server answered a poll yet")
        return f"polling {len(monitored(ctx))} server(s); answering: {', '.join(answering)}"

    def scrape_jobs(self, ctx: StackContext) -> list[ScrapeJob]:
        return [ScrapeJob("nats-exporter", ctx.address(self.name))]
