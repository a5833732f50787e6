"""A slot's JetStream cluster: the names of its nodes and proxies, and each node's own view of
its role and routes, read from its monitoring endpoints (`/jsz`, `/routez`).

Every link of the cluster passes through Toxiproxy: node `nX` is reached by clients through
proxy `nats_nX`, and its route to `nY` through `route_nX_nY` (one proxy per direction, so a
partition is one proxy fault each way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.probes import ProbeFailed

CLUSTER_NAME = "harness-cluster"
SYSTEM_USER = "harness-sys:harness-sys"
"""`user:password` of the system account of a local cluster slot (meta-group requests such as
`$JS.API.META.LEADER.STEPDOWN` are answered there only). A throwaway local stack's, not a
secret. Clients that give no user are the application account's `app` (`no_auth_user`)."""
COMPONENT_PREFIX = "nats-"


def node_names(size: int) -> list[str]:
    """`n1` … `nN`."""
    return [f"n{i}" for i in range(1, size + 1)]


def component_name(node: str) -> str:
    """The stack component running node `node` (`nats-n1`)."""
    return f"{COMPONENT_PREFIX}{node}"


def node_of(component: str) -> str | None:
    """The node a component name runs (`nats-n2` → `n2`), None for any other component."""
    match = re.fullmatch(rf"{COMPONENT_PREFIX}(n\d+)", component)
    return match.group(1) if match else None


def server_name(node: str) -> str:
    """The node's `server_name` (unique in the cluster; the name /jsz reports leaders by)."""
    return f"harness-{node}"


def client_proxy(node: str) -> str:
    """The Toxiproxy proxy clients reach `node` through."""
    return f"nats_{node}"


def route_proxy(source: str, destination: str) -> str:
    """The proxy carrying the route `source` opens to `destination`."""
    return f"route_{source}_{destination}"


def route_pairs(size: int) -> list[tuple[str, str]]:
    """Every directed (source, destination) pair of distinct nodes."""
    nodes = node_names(size)
    return [(a, b) for a in nodes for b in nodes if a != b]


def route_proxies_of(node: str, size: int) -> list[str]:
    """Every route proxy with `node` at one end, both directions: all of them down cuts it off."""
    return [route_proxy(a, b) for a, b in route_pairs(size) if node in (a, b)]


def proxy_names(size: int) -> list[str]:
    """Every proxy of a cluster of `size` nodes: client proxies, then route proxies."""
    return [client_proxy(n) for n in node_names(size)] + [
        route_proxy(a, b) for a, b in route_pairs(size)
    ]


@dataclass
class NodeView:
    """What one node says about itself: the meta leader it knows, the streams it holds with
    their leaders, and the routes it has."""

    server_name: str
    meta_leader: str | None
    streams: dict[str, str | None] = field(default_factory=dict)
    """stream name → the leader this node knows (None: no leader)."""
    route_connections: int = 0
    route_peers: list[str] = field(default_factory=list)
    """Distinct servers it has a route to (a pair may hold several pooled connections)."""

    @property
    def is_meta_leader(self) -> bool:
        return self.meta_leader == self.server_name

    @property
    def leads(self) -> list[str]:
        return sorted(s for s, leader in self.streams.items() if leader == self.server_name)

    @property
    def roles(self) -> list[str]:
        roles = ["meta leader"] if self.is_meta_leader else []
        if self.leads:
            roles.append(f"stream leader of {', '.join(self.leads)}")
        return roles or ["follower"]

    def summary(self) -> str:
        leaderless = sorted(s for s, leader in self.streams.items() if not leader)
        text = (
            f"{self.server_name}: {'; '.join(self.roles)}; routes to {len(self.route_peers)} "
            f"peer(s) ({self.route_connections} connection(s))"
        )
        if self.meta_leader is None:
            text += "; no meta leader known"
        if leaderless:
            text += f"; no leader for {', '.join(leaderless)}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "server_name": self.server_name,
            "roles": self.roles,
            "meta_leader": self.meta_leader,
            "streams": self.streams,
            "route_peers": self.route_peers,
            "route_connections": self.route_connections,
        }


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        raise ProbeFailed(f"GET {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise ProbeFailed(f"GET {url}: HTTP {response.status_code} {response.text[:200]!r}")
    try:
        body = response.json()
    except ValueError as exc:
        raise ProbeFailed(f"GET {url}: not JSON: {response.text[:200]!r}") from exc
    if not isinstance(body, dict):
        raise ProbeFailed(f"GET {url}: not a JSON object")
    return body


def view_from(jsz: dict[str, Any], routez: dict[str, Any]) -> NodeView:
    """A node's view from its `/jsz?streams=true&raft=true` and `/routez` answers."""
    name = str(jsz.get("server_name") or routez.get("server_name") or "")
    meta = jsz.get("meta_cluster") or {}
    streams: dict[str, str | None] = {}
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            cluster = stream.get("cluster") or {}
            streams[str(stream.get("name"))] = cluster.get("leader") or None
    routes = routez.get("routes") or []
    peers = sorted({str(r.get("remote_name") or r.get("remote_id")) for r in routes})
    return NodeView(
        server_name=name,
        meta_leader=meta.get("leader") or None,
        streams=streams,
        route_connections=int(routez.get("num_routes") or len(routes)),
        route_peers=peers,
    )


async def node_view(client: httpx.AsyncClient, monitor_url: str) -> NodeView:
    """Ask one node (its monitoring URL) for its view; `ProbeFailed` when it does not answer."""
    jsz = await _get_json(client, f"{monitor_url}/jsz?streams=true&raft=true")
    routez = await _get_json(client, f"{monitor_url}/routez")
    return view_from(jsz, routez)


async def node_health(client: httpx.AsyncClient, monitor_url: str) -> None:
    """`/healthz` says ok (JetStream current, meta group joined); `ProbeFailed` with why not."""
    url = f"{monitor_url}/healthz"
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        raise ProbeFailed(f"GET {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise ProbeFailed(f"GET {url}: HTTP {response.status_code} {response.text[:200]!r}")
