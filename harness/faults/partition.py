"""A network partition of a cluster through its route proxies: one node cut off from the other
two, in both directions (every route proxy with that node at either end disabled, its live
route connections dropped). With `node: stream_leader` the leader lands in the minority.

Heal enables every route proxy again and proves each node's `/routez` back to the route count
it had before the fault, every stream led and its replicas current.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from harness.errors import ToxiproxyError
from harness.faults import cluster
from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent
from harness.specs.faults import PartitionFault
from harness.stack import cluster as names

WHOLE_WITHIN = 20.0


def route_proxies(ctx: Any, node: str) -> list[str]:
    """Every route proxy with `node` at one end (the target's topology lists them)."""
    spec = next(n for n in cluster.topology_nodes(ctx.target) if n.name == node)
    return list(spec.route_proxies) or names.route_proxies_of(node, len(ctx.target.topology.nodes))


def all_route_proxies(ctx: Any) -> list[str]:
    nodes = cluster.topology_nodes(ctx.target)
    return sorted({p for n in nodes for p in route_proxies(ctx, n.name)})


class PartitionDriver(FaultDriver):
    kind = "partition"
    spec_model = PartitionFault
    timeout_floor: ClassVar[float] = 30.0
    spec: PartitionFault

    async def capable(self) -> str | None:
        try:
            nodes = cluster.topology_nodes(self.ctx.target)
            proxies = await self.ctx.toxiproxy.proxies()
        except (FaultNotInEffect, ToxiproxyError) as exc:
            return str(exc)
        missing = sorted(
            p for n in nodes for p in route_proxies(self.ctx, n.name) if p not in proxies
        )
        if missing:
            return f"Toxiproxy at {self.ctx.toxiproxy.url} has no route proxies {missing}"
        return None

    async def prepare(self) -> None:
        snap = await cluster.snapshot(self.ctx)
        node = cluster.resolve(snap, self.spec.node, self.spec.stream)
        self.state.update(
            node=node,
            role=self.spec.node,
            proxies=route_proxies(self.ctx, node),
            routes_before={n: snap.num_routes(n) for n in snap.routez},
            before=snap.facts(),
        )

    async def apply(self) -> None:
        for proxy in self.state["proxies"]:
            await self.ctx.toxiproxy.set_enabled(proxy, False)

    async def read_back(self) -> dict[str, Any]:
        node = self.state["node"]
        enabled = [
            p for p in self.state["proxies"] if (await self.ctx.toxiproxy.proxy(p)).get("enabled")
        ]
        if enabled:
            raise FaultNotInEffect(f"route proxies still enabled: {enabled}")
        snap = await cluster.snapshot(self.ctx)
        server = snap.servers[node]
        if node in snap.routez and snap.num_routes(node) > 0:
            raise FaultNotInEffect(
                f"{node} still has {snap.num_routes(node)} route(s) "
                f"to {sorted(snap.route_peers(node))}"
            )
        still = sorted(n for n in snap.routez if n != node and server in snap.route_peers(n))
        if still:
            raise FaultNotInEffect(f"{', '.join(still)} still routed to {node}")
        return {
            "node": node,
            "role": self.spec.node,
            "stream": self.spec.stream,
            "proxies_disabled": self.state["proxies"],
            "routes": {n: snap.num_routes(n) for n in snap.routez},
            "before": self.state.get("before"),
            "after": snap.facts(),
        }

    async def remove(self) -> None:
        for proxy in self.state["proxies"]:
            await self.ctx.toxiproxy.set_enabled(proxy, True)

    async def prove_gone(self) -> dict[str, Any]:
        disabled = [
            p for p in all_route_proxies(self.ctx)
            if not (await self.ctx.toxiproxy.proxy(p)).get("enabled")
        ]  # fmt: skip
        if disabled:
            raise FaultStillPresent(f"route proxies still disabled: {disabled}")
        before = self.state.get("routes_before", {})

        def short(snap: cluster.ClusterSnapshot) -> list[str]:
            below = {
                n: (snap.num_routes(n), want)
                for n, want in before.items()
                if n in snap.routez and snap.num_routes(n) < want
            }
            if not below:
                return []
            return [f"route counts below their pre-fault value (now, before): {below}"]

        snap, problems = await cluster.wait_whole(self.ctx, WHOLE_WITHIN, short)
        if problems:
            raise FaultStillPresent(f"partition lifted, cluster not whole: {'; '.join(problems)}")
        return {
            "node": self.state["node"],
            "routes": {n: snap.num_routes(n) for n in snap.routez},
            "routes_before": before,
            "cluster": snap.facts(),
        }

    async def fallback(self) -> None:
        """Enable every route proxy of the cluster; if Toxiproxy refuses, reset it whole."""
        try:
            for proxy in all_route_proxies(self.ctx):
                await self.ctx.toxiproxy.set_enabled(proxy, True)
        except ToxiproxyError:
            with contextlib.suppress(ToxiproxyError):
                await self.ctx.toxiproxy.reset()
            raise
