"""What the cluster fault kinds share: which node plays a role (resolved from every node's
`/jsz`), whether the cluster is whole again (routes, leaders, current replicas), and the
node's process in the local stack.

Role resolution trusts a leader only where the leader says so itself: a node's `/jsz` names
the leader it last heard of, which a partitioned or paused node may have wrong; the leader's own
answer (its server name equal to the leader it reports) is the one that counts. Replica
currency likewise comes from the leader's view only: a follower reports its fellow followers
as `current: false, active: 0` because it does not track them.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import anyio
import httpx

from harness.config import NatsNodeSpec, Target
from harness.faults.base import FaultContext, FaultDriver, FaultNotInEffect
from harness.stack import cluster as names
from harness.stack.process import process_state

Role = Literal["stream_leader", "follower", "meta_leader"]
ROLES: tuple[str, ...] = ("stream_leader", "follower", "meta_leader")
MONITOR_TIMEOUT = 1.5
"""Seconds to wait for one node's monitoring answer (a paused node never answers)."""


class NodeNotResolved(FaultNotInEffect):
    """No node plays the role (no leader, node unknown, no follower answering)."""


# --- what the nodes say (pure: answers in, facts out) ------------------------------------------


@dataclass
class ClusterSnapshot:
    """Every node's `/jsz?streams=true&raft=true`, `/routez` and `/healthz`, keyed by node name
    (`n1`); a node that did not answer is in `errors` instead."""

    servers: dict[str, str]
    """node name → server name (from the target's topology)."""
    jsz: dict[str, dict[str, Any]] = field(default_factory=dict)
    routez: dict[str, dict[str, Any]] = field(default_factory=dict)
    unhealthy: dict[str, str] = field(default_factory=dict)
    """node → why its `/healthz` is not ok (JetStream still catching up answers 503)."""
    errors: dict[str, str] = field(default_factory=dict)

    def node_of(self, server: str | None) -> str | None:
        return next((n for n, s in self.servers.items() if s == server), None)

    def _stream(self, node: str, stream: str) -> dict[str, Any] | None:
        for account in self.jsz.get(node, {}).get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") == stream:
                    return detail
        return None

    def streams(self) -> list[str]:
        """Every stream any answering node holds."""
        found = {
            str(d.get("name"))
            for node in self.jsz
            for account in self.jsz[node].get("account_details") or []
            for d in account.get("stream_detail") or []
        }
        return sorted(found)

    def stream_claimants(self, stream: str) -> list[str]:
        """Every node leading `stream` by its own word: more than one while a paused or cut-off
        old leader has not yet noticed that it lost its term."""
        return [
            node
            for node, server in self.servers.items()
            if ((self._stream(node, stream) or {}).get("cluster") or {}).get("leader") == server
        ]

    def stream_leader(self, stream: str) -> str | None:
        """The node leading `stream` by its own word, None when no node claims it."""
        return next(iter(self.stream_claimants(stream)), None)

    def meta_claimants(self) -> list[str]:
        """Every node leading the meta group by its own word."""
        return [
            node
            for node, server in self.servers.items()
            if (self.jsz.get(node, {}).get("meta_cluster") or {}).get("leader") == server
        ]

    def meta_leader(self) -> str | None:
        """The node leading the meta group by its own word."""
        return next(iter(self.meta_claimants()), None)

    def replicas(self, stream: str) -> list[dict[str, Any]]:
        """The followers of `stream` as its leader sees them (name → node added), [] leaderless."""
        leader = self.stream_leader(stream)
        if leader is None:
            return []
        detail = self._stream(leader, stream) or {}
        out = []
        for replica in (detail.get("cluster") or {}).get("replicas") or []:
            out.append({**replica, "node": self.node_of(replica.get("name"))})
        return out

    def expected_replicas(self, stream: str) -> int:
        for node in self.jsz:
            detail = self._stream(node, stream)
            if detail:
                return int((detail.get("config") or {}).get("num_replicas") or 1)
        return 1

    def followers(self, stream: str) -> list[str]:
        """Nodes holding a replica of `stream` other than its leader, current ones first."""
        replicas = [r for r in self.replicas(stream) if r["node"]]
        replicas.sort(key=lambda r: (not r.get("current"), r["node"]))
        return [r["node"] for r in replicas]

    def route_peers(self, node: str) -> set[str]:
        return {
            str(r.get("remote_name") or r.get("remote_id"))
            for r in self.routez.get(node, {}).get("routes") or []
        }

    def num_routes(self, node: str) -> int:
        routez = self.routez.get(node, {})
        return int(routez.get("num_routes") or len(routez.get("routes") or []))

    def roles(self) -> dict[str, list[str]]:
        """Each node's roles, for evidence."""
        meta = self.meta_leader()
        out: dict[str, list[str]] = {n: [] for n in self.servers}
        if meta:
            out[meta].append("meta_leader")
        for stream in self.streams():
            leader = self.stream_leader(stream)
            if leader:
                out[leader].append(f"stream_leader:{stream}")
        return out

    def facts(self) -> dict[str, Any]:
        """A compact record of the cluster for evidence."""
        return {
            "meta_leader": self.meta_leader(),
            "stream_leaders": {s: self.stream_leader(s) for s in self.streams()},
            "routes": {n: self.num_routes(n) for n in self.routez},
            "unanswered": dict(self.errors),
        }

    def replica_problems(self, stream: str, node: str | None = None) -> list[str]:
        """Why `stream` is not whole (leader, every replica current with lag 0); only `node`'s
        replica when given."""
        leader = self.stream_leader(stream)
        if leader is None:
            return [f"stream {stream} has no leader"]
        replicas = self.replicas(stream)
        problems = []
        want = self.expected_replicas(stream) - 1
        if node is None and len(replicas) < want:
            problems.append(
                f"stream {stream}: leader {leader} lists {len(replicas)} of {want} followers"
            )
        for replica in replicas:
            if node is not None and replica["node"] != node:
                continue
            lag = int(replica.get("lag") or 0)
            if not replica.get("current") or replica.get("offline") or lag:
                problems.append(
                    f"stream {stream}: replica {replica.get('name')} not current "
                    f"(current={replica.get('current', False)}, lag={lag}, "
                    f"offline={replica.get('offline', False)})"
                )
        if node is not None and node != leader and not any(r["node"] == node for r in replicas):
            problems.append(f"stream {stream}: leader {leader} lists no replica on {node}")
        return problems

    def whole_problems(self) -> list[str]:
        """Why the cluster is not whole: a node silent, a route missing, no meta leader, a
        stream without a leader or with a replica behind. Empty when whole."""
        problems = [f"{n} did not answer: {e}" for n, e in sorted(self.errors.items())]
        problems += [f"{n} /healthz: {why}" for n, why in sorted(self.unhealthy.items())]
        for node, server in self.servers.items():
            if node not in self.routez:
                continue
            missing = set(self.servers.values()) - {server} - self.route_peers(node)
            if missing:
                problems.append(f"{node} has no route to {', '.join(sorted(missing))}")
        if self.meta_leader() is None:
            problems.append("no meta leader")
        if len(self.meta_claimants()) > 1:
            problems.append(f"several nodes claim the meta leadership: {self.meta_claimants()}")
        for stream in self.streams():
            claimants = self.stream_claimants(stream)
            if len(claimants) > 1:
                problems.append(f"stream {stream}: several nodes claim to lead it: {claimants}")
            problems += self.replica_problems(stream)
        return problems


def resolve(snapshot: ClusterSnapshot, node: str, stream: str) -> str:
    """The node a fault's `node` means now: a role resolved from the snapshot, or a name."""
    if node in snapshot.servers:
        return node
    if node == "stream_leader":
        found = snapshot.stream_leader(stream)
        if found is None:
            raise NodeNotResolved(f"no node claims the leadership of stream {stream}")
        return found
    if node == "meta_leader":
        found = snapshot.meta_leader()
        if found is None:
            raise NodeNotResolved("no node claims the meta leadership")
        return found
    if node == "follower":
        followers = snapshot.followers(stream)
        if not followers:
            raise NodeNotResolved(f"stream {stream} has no follower its leader knows of")
        return followers[0]
    known = ", ".join([*ROLES, *snapshot.servers])
    raise NodeNotResolved(f"node {node!r} is neither a role nor a node of the target ({known})")


# --- asking the nodes ------------------------------------------------------------------------


def topology_nodes(target: Target) -> list[NatsNodeSpec]:
    """The target's cluster nodes; FaultNotInEffect when the target is not a cluster."""
    if target.topology.kind != "cluster" or not target.topology.nodes:
        raise FaultNotInEffect(
            f"target {target.name} is not a NATS cluster (topology {target.topology.kind}); "
            "cluster faults need `harness up --nats-cluster 3` or a cluster target"
        )
    return list(target.topology.nodes)


async def _get(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await http.get(url, timeout=MONITOR_TIMEOUT)
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"GET {url}: not a JSON object")
    return body


async def snapshot(ctx: FaultContext) -> ClusterSnapshot:
    """Ask every node at once; a silent node is an error in the snapshot, not an exception."""
    nodes = topology_nodes(ctx.target)
    snap = ClusterSnapshot(servers={n.name: n.server_name for n in nodes})

    async def one(spec: NatsNodeSpec) -> None:
        try:
            with anyio.fail_after(MONITOR_TIMEOUT * 3 + 0.5):
                jsz = await _get(ctx.http, f"{spec.monitor_url}/jsz?streams=true&raft=true")
                routez = await _get(ctx.http, f"{spec.monitor_url}/routez")
                health = await ctx.http.get(f"{spec.monitor_url}/healthz", timeout=MONITOR_TIMEOUT)
        except Exception as exc:
            snap.errors[spec.name] = f"{type(exc).__name__}: {exc}".rstrip(": ")
            return
        snap.jsz[spec.name] = jsz
        snap.routez[spec.name] = routez
        if health.status_code != 200:
            snap.unhealthy[spec.name] = f"HTTP {health.status_code} {health.text.strip()[:200]}"

    async with anyio.create_task_group() as tg:
        for spec in nodes:
            tg.start_soon(one, spec)
    return snap


async def wait_whole(
    ctx: FaultContext,
    within: float,
    also: Callable[[ClusterSnapshot], list[str]] | None = None,
) -> tuple[ClusterSnapshot, list[str]]:
    """Poll until the cluster is whole (and `also` finds nothing wrong) or `within` seconds
    pass: the last snapshot and what was still wrong (empty: whole)."""
    deadline = anyio.current_time() + within
    while True:
        snap = await snapshot(ctx)
        problems = snap.whole_problems() + (also(snap) if also else [])
        if not problems or anyio.current_time() > deadline:
            return snap, problems
        await anyio.sleep(0.3)


# --- the node's process (local stack only) ------------------------------------------------------


def local_stack(ctx: FaultContext) -> Any:
    if ctx.stack is None or ctx.target.kind != "local":
        raise FaultNotInEffect(
            f"this fault signals a node's process: it needs a local stack; target "
            f"{ctx.target.name} is external"
        )
    return ctx.stack


def component(node: str) -> str:
    return names.component_name(node)


def node_pid(ctx: FaultContext, node: str) -> int:
    return int(local_stack(ctx).record(component(node)).pid)


def node_alive(ctx: FaultContext, node: str) -> bool:
    return bool(local_stack(ctx).record(component(node)).alive())


def node_state(ctx: FaultContext, node: str) -> str | None:
    """The kernel's state letter of the node's process (`T` stopped), None when gone."""
    record = local_stack(ctx).record(component(node))
    return process_state(record.pid) if record.alive() else None


def continue_node(ctx: FaultContext, node: str) -> None:
    """SIGCONT the node's process group if it is alive (a no-op for a running one)."""
    record = local_stack(ctx).record(component(node))
    if record.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGCONT)


async def start_node(ctx: FaultContext, node: str, wait: float) -> None:
    """Start a stopped node again (same config, ports and store); wait up to `wait` seconds
    for it to be ready, then leave it starting (heal proves the rest)."""
    stack = local_stack(ctx)
    if stack.record(component(node)).alive():
        return
    with anyio.move_on_after(wait):
        await stack.start_component(component(node))


async def revive_all(ctx: FaultContext, wait: float) -> list[str]:
    """The fallback of every node fault: SIGCONT every node, start any that is down. Returns
    what it did."""
    done = []
    for spec in topology_nodes(ctx.target):
        state = node_state(ctx, spec.name)
        if state == "T":
            continue_node(ctx, spec.name)
            done.append(f"SIGCONT {spec.name}")
        elif state is None:
            await start_node(ctx, spec.name, wait)
            done.append(f"started {spec.name}")
    return done


class LocalNodeDriver(FaultDriver):
    """A fault on one node of the local cluster slot, chosen by role when it is applied: it
    needs the slot's processes (a signal, a restart, its store), so an external target cannot
    take it."""

    records_pid: ClassVar[bool] = False
    """Whether the fault acts on the node's process (a signal): its pid is journaled."""

    async def capable(self) -> str | None:
        try:
            topology_nodes(self.ctx.target)
            local_stack(self.ctx)
        except FaultNotInEffect as exc:
            return str(exc)
        return None

    async def prepare(self) -> None:
        snap = await snapshot(self.ctx)
        node = resolve(snap, self.spec.node, self.spec.stream)  # type: ignore[attr-defined]
        self.state.update(node=node, role=self.spec.node, before=snap.facts())  # type: ignore[attr-defined]
        if self.records_pid:
            self.state["pid"] = node_pid(self.ctx, node)
