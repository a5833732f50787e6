"""Check every endpoint of a target, so `harness status --target` says which fail and why."""

from __future__ import annotations

import anyio

from harness.config import Target
from harness.http import async_client
from harness.probes import (
    ProbeResult,
    probe_alertmanager,
    probe_nats,
    probe_prometheus,
    probe_router,
    probe_toxiproxy,
    probe_webhook,
    run_probe,
)
from harness.stack.cluster import node_health, node_view


async def check_target(target: Target, timeout: float = 5.0) -> list[ProbeResult]:
    """Probe each endpoint concurrently; results in a fixed order, never raises."""
    async with async_client(timeout) as client:
        probes = [
            ("nats", target.nats_url, lambda: probe_nats(target.nats_url, timeout)),
            (
                "toxiproxy",
                target.toxiproxy_url,
                lambda: probe_toxiproxy(client, target.toxiproxy_url, list(target.proxies)),
            ),
            (
                "prometheus",
                target.prometheus_url,
                lambda: probe_prometheus(client, target.prometheus_url, require_targets_up=False),
            ),
            (
                "alertmanager",
                target.alertmanager_url,
                lambda: probe_alertmanager(client, target.alertmanager_url),
            ),
        ]
        for node in target.topology.nodes:  # a cluster: each node healthy, with its role

            async def node_probe(url: str = node.monitor_url) -> str:
                await node_health(client, url)
                return (await node_view(client, url)).summary()

            probes.append((f"nats {node.name}", node.monitor_url, node_probe))
        ready = dict(enumerate(target.router_ready_urls))
        for index, url in enumerate(target.router_metrics_urls):
            probes.append(
                (
                    f"router[{index}]",
                    url,
                    lambda url=url, index=index: probe_router(client, url, ready.get(index)),
                )
            )
        if target.webhook_url:
            webhook = target.webhook_url
            probes.append(("webhook", webhook, lambda: probe_webhook(client, webhook)))

        results: list[ProbeResult | None] = [None] * len(probes)

        async def one(i: int) -> None:
            name, url, probe = probes[i]
            results[i] = await run_probe(name, url, probe, timeout)

        async with anyio.create_task_group() as tg:
            for i in range(len(probes)):
                tg.start_soon(one, i)
    return [r for r in results if r is not None]
