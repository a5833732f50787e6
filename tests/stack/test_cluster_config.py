"""A cluster slot's configuration, without starting anything: every node's routes and clients
go through Toxiproxy, gossip has no direct address to use, the router knows every node and
creates R3 streams, and a single-node slot is exactly what it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import Target
from harness.stack import cluster
from harness.stack.component import StackOptions
from harness.stack.components.nats_exporter import NatsExporter
from harness.stack.components.nats_node import NO_ROUTE_ADDRESS, NatsNode
from harness.stack.components.router import Router
from harness.stack.components.toxiproxy import Toxiproxy
from harness.stack.ports import free_port
from harness.stack.stack import LocalStack, component_named
from tests.exporter.support import answers


def stack_with_ports(tmp_path: Path, nodes: int) -> LocalStack:
    stack = LocalStack(tmp_path / "slot", options=StackOptions(nats_cluster=nodes))
    stack.ctx.ports = {
        c.name: {p: free_port() for p in c.ports_needed(stack.ctx)} for c in stack.components
    }
    return stack


def test_single_node_slot_is_the_classic_stack(tmp_path: Path) -> None:
    stack = stack_with_ports(tmp_path, 1)
    names = [c.name for c in stack.components]
    assert names == ["nats", "toxiproxy", "router", "webhook", "alertmanager", "prometheus"]
    assert set(stack.ctx.ports["toxiproxy"]) == {"main", "router_nats"}
    router = stack.component("router").command(stack.ctx)
    assert f"--nats-url=nats://{stack.ctx.address('toxiproxy', 'router_nats')}" in router
    assert not any(a.startswith("--stream-replicas") for a in router)
    target = stack.target()
    assert target.topology.kind == "single" and target.nats_servers == [target.nats_url]


def test_cluster_slot_components_and_proxies(tmp_path: Path) -> None:
    stack = stack_with_ports(tmp_path, 3)
    names = [c.name for c in stack.components]
    assert names[:3] == ["nats-n1", "nats-n2", "nats-n3"] and "nats" not in names
    assert "nats-exporter" in names and names[-1] == "prometheus"
    toxiproxy = stack.component("toxiproxy")
    assert isinstance(toxiproxy, Toxiproxy)
    proxies = {p["name"]: p for p in toxiproxy.proxies(stack.ctx)}
    assert set(proxies) == {
        "nats_n1",
        "nats_n2",
        "nats_n3",
        "route_n1_n2",
        "route_n1_n3",
        "route_n2_n1",
        "route_n2_n3",
        "route_n3_n1",
        "route_n3_n2",
    }
    ctx = stack.ctx
    assert proxies["nats_n2"]["upstream"] == ctx.address("nats-n2")
    # route_nX_nY carries X's route to Y: it ends at Y's cluster port.
    assert proxies["route_n1_n3"]["upstream"] == ctx.address("nats-n3", "cluster")
    assert proxies["route_n3_n1"]["upstream"] == ctx.address("nats-n1", "cluster")


def test_nodes_route_only_through_their_proxies(tmp_path: Path) -> None:
    stack = stack_with_ports(tmp_path, 3)
    ctx = stack.ctx
    configs = {}
    for name in ("n1", "n2", "n3"):
        node = stack.component(f"nats-{name}")
        assert isinstance(node, NatsNode)
        configs[name] = node.config(ctx)
    assert len({c["server_name"] for c in configs.values()}) == 3
    assert len({c["jetstream"]["store_dir"] for c in configs.values()}) == 3
    n1 = configs["n1"]
    assert n1["cluster"]["name"] == cluster.CLUSTER_NAME
    assert n1["cluster"]["listen"] == ctx.address("nats-n1", "cluster")
    assert n1["cluster"]["routes"] == [
        f"nats-route://{ctx.address('toxiproxy', 'route_n1_n2')}",
        f"nats-route://{ctx.address('toxiproxy', 'route_n1_n3')}",
    ]
    direct = {ctx.address(f"nats-{n}", "cluster") for n in ("n1", "n2", "n3")}
    for config in configs.values():
        # Gossip: peers learn only an address where nothing listens, never a cluster port.
        assert config["cluster"]["advertise"] == NO_ROUTE_ADDRESS not in direct
        assert config["cluster"]["no_advertise"] is True
        assert not any(
            r.removeprefix("nats-route://") in direct for r in config["cluster"]["routes"]
        )
    assert n1["client_advertise"] == ctx.address("toxiproxy", "nats_n1")
    assert n1["http"] == ctx.address("nats-n1", "monitor")


def test_router_knows_every_node_and_makes_r3_streams(tmp_path: Path) -> None:
    stack = stack_with_ports(tmp_path, 3)
    router = stack.component("router")
    assert isinstance(router, Router)
    argv = router.command(stack.ctx)
    urls = [f"nats://{stack.ctx.address('toxiproxy', f'nats_n{i}')}" for i in (1, 2, 3)]
    assert f"--nats-url={','.join(urls)}" in argv
    assert "--stream-replicas=3" in argv


def test_cluster_target(tmp_path: Path) -> None:
    stack = stack_with_ports(tmp_path, 3)
    target = stack.target()
    ctx = stack.ctx
    assert target.topology.kind == "cluster" and target.topology.stream_replicas == 3
    assert target.nats_servers == [
        f"nats://{ctx.address('toxiproxy', f'nats_n{i}')}" for i in (1, 2, 3)
    ]
    n2 = target.topology.nodes[1]
    assert n2.server_name == "harness-n2" and n2.client_proxy == "nats_n2"
    assert n2.monitor_url == ctx.url("nats-n2", "monitor")
    assert set(n2.route_proxies) == {"route_n1_n2", "route_n2_n1", "route_n2_n3", "route_n3_n2"}
    assert set(target.proxies) >= {"nats_n1", "route_n1_n2"}
    assert Target.model_validate(target.model_dump(mode="json")) == target


def test_exporter_polls_every_node(tmp_path: Path) -> None:
    stack = stack_with_ports(tmp_path, 3)
    exporter = stack.component("nats-exporter")
    assert isinstance(exporter, NatsExporter)
    argv = exporter.command(stack.ctx)
    for i in (1, 2, 3):
        assert f"--server=harness-n{i}={stack.ctx.url(f'nats-n{i}', 'monitor')}" in argv
    jobs = [j.job for c in stack.components for j in c.scrape_jobs(stack.ctx)]
    assert "nats-exporter" in jobs


@pytest.mark.parametrize(
    ("name", "kind"),
    [("nats-n2", "NatsNode"), ("nats-exporter", "NatsExporter"), ("nats", "Nats")],
)
def test_components_are_found_again_by_name(name: str, kind: str) -> None:
    assert type(component_named(name)).__name__ == kind


def test_node_roles_and_routes_from_captured_answers() -> None:
    views = {n: cluster.view_from(answers(n)["jsz"], answers(n)["routez"]) for n in ("n1", "n2")}
    n1, n2 = views["n1"], views["n2"]
    assert n1.server_name == "harness-n1" and n1.roles == ["stream leader of router-stream"]
    assert n2.roles == ["meta leader"]
    assert n1.route_peers == ["harness-n2", "harness-n3"] and n1.route_connections == 8
    assert n1.summary().startswith("harness-n1: stream leader of router-stream; routes to 2 peer")
    alone = cluster.view_from({"meta_cluster": {}}, {"server_name": "harness-n3", "routes": []})
    assert alone.roles == ["follower"] and alone.route_connections == 0
    assert "no meta leader known" in alone.summary()
