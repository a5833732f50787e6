"""One node of a slot's JetStream cluster: a real nats-server whose routes and clients all
pass through Toxiproxy.

Its configured routes are the route proxies `route_<me>_<peer>`, one per peer. Gossip must not
give it a way around them: a server that learns of a peer it has no route to opens an
*implicit* route to the address that peer advertises. So each node advertises a cluster address
nothing listens on (`NO_ROUTE_ADDRESS`): an implicit route fails at once
(one attempt, `connect_retries` 0) and the explicit, proxied routes are the only ones. The
client address it advertises is its own client proxy, and `no_advertise` keeps it from telling
clients any other server's address: clients use the proxy URLs they were given.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from harness.probes import ProbeFailed
from harness.stack import cluster
from harness.stack.binaries import find_binary
from harness.stack.component import Component, StackContext

NO_ROUTE_ADDRESS = "127.0.0.1:1"
"""The cluster address every node advertises: port 1 on loopback (tcpmux, a privileged port
nothing of ours or of a usual system listens on), so a route learned from gossip is refused."""


class NatsNode(Component):
    """Node `node` (`n1`, …) of the cluster; its component name is `nats-<node>`."""

    port_names = ("main", "monitor", "cluster")
    ready_timeout = 40.0

    def __init__(self, node: str):
        self.node = node
        self.name = cluster.component_name(node)  # type: ignore[misc]  # per-instance name

    def config(self, ctx: StackContext) -> dict[str, Any]:
        size = ctx.options.nats_cluster
        peers = [n for n in cluster.node_names(size) if n != self.node]
        return {
            "server_name": cluster.server_name(self.node),
            "host": ctx.host,
            "port": ctx.port(self.name),
            "http": ctx.address(self.name, "monitor"),
            "client_advertise": ctx.address("toxiproxy", cluster.client_proxy(self.node)),
            "jetstream": {
                "store_dir": str(ctx.directory(self.name) / "jetstream"),
                **sync_setting(ctx),
            },
            **system_account(),
            "cluster": {
                "name": cluster.CLUSTER_NAME,
                "listen": ctx.address(self.name, "cluster"),
                "advertise": NO_ROUTE_ADDRESS,
                "no_advertise": True,
                "routes": [
                    "nats-route://" + ctx.address("toxiproxy", cluster.route_proxy(self.node, peer))
                    for peer in peers
                ],
            },
        }

    def command(self, ctx: StackContext) -> list[str]:
        path = ctx.directory(self.name) / "nats.conf"
        path.write_text(json.dumps(self.config(ctx), indent=2))  # the conf format reads JSON
        return [find_binary("nats-server"), "--config", str(path)]

    def monitor_url(self, ctx: StackContext) -> str:
        return ctx.url(self.name, "monitor")

    async def ready(self, ctx: StackContext, client: httpx.AsyncClient) -> str:
        """Healthy (`/healthz`: JetStream current in its meta group) and routed to every peer."""
        url = self.monitor_url(ctx)
        await cluster.node_health(client, url)
        view = await cluster.node_view(client, url)
        want = ctx.options.nats_cluster - 1
        if len(view.route_peers) < want:
            raise ProbeFailed(f"{view.summary()}; waiting for routes to all {want} peers")
        return view.summary()

    async def describe(self, ctx: StackContext, client: httpx.AsyncClient) -> dict[str, Any]:
        try:
            return (await cluster.node_view(client, self.monitor_url(ctx))).as_dict()
        except ProbeFailed as exc:
            return {"error": str(exc)}

    def target_fields(self, ctx: StackContext) -> dict[str, Any]:
        return cluster_target_fields(ctx)


def sync_setting(ctx: StackContext) -> dict[str, str]:
    """The `jetstream` block's sync interval, when the stack runs with one of its own."""
    return {} if ctx.sync_interval is None else {"sync_interval": ctx.sync_interval}


def system_account() -> dict[str, Any]:
    """A system account with a user (meta-group requests need one); naming any user makes
    every client authenticate, so clients that give none become `app` of the application
    account `APP`, which holds JetStream (`$G` is reserved and takes no users)."""
    user, _, password = cluster.SYSTEM_USER.partition(":")
    return {
        "accounts": {
            "SYS": {"users": [{"user": user, "password": password}]},
            "APP": {"jetstream": "enabled", "users": [{"user": "app", "password": "app"}]},
        },
        "system_account": "SYS",
        "no_auth_user": "app",
    }


def cluster_target_fields(ctx: StackContext) -> dict[str, Any]:
    """The target's view of the whole cluster (every node gives the same, so it merges)."""
    size = ctx.options.nats_cluster
    nodes = cluster.node_names(size)
    urls = [f"nats://{ctx.address('toxiproxy', cluster.client_proxy(n))}" for n in nodes]
    return {
        "nats_url": urls[0],
        "nats_urls": urls,
        "topology": {
            "kind": "cluster",
            "cluster_name": cluster.CLUSTER_NAME,
            "stream_replicas": min(3, size),
            "system_user": cluster.SYSTEM_USER,
            "nodes": [
                {
                    "name": n,
                    "server_name": cluster.server_name(n),
                    "client_url": url,
                    "monitor_url": ctx.url(cluster.component_name(n), "monitor"),
                    "client_proxy": cluster.client_proxy(n),
                    "route_proxies": cluster.route_proxies_of(n, size),
                }
                for n, url in zip(nodes, urls, strict=True)
            ],
        },
    }
