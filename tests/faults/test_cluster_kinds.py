"""The cluster fault kinds as a scenario declares them: registered, carrying why they are not
Toxiproxy faults, and given the time a node restart or a cluster's convergence needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.faults import DRIVERS
from harness.faults.journal import Journal
from harness.faults.lifecycle import FaultRunner
from tests.faults.live import fault
from tests.stack.test_cluster_config import stack_with_ports

KINDS = ("node_kill", "node_pause", "partition", "leader_stepdown", "storage_damage")


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_registered_and_says_why_not_toxiproxy(kind: str) -> None:
    spec = fault(kind=kind, duration="30s")
    driver = DRIVERS[kind]
    if driver.through_toxiproxy:
        assert kind == "partition"  # the route proxies: a Toxiproxy fault
    else:
        assert spec.why and "not" in spec.why, spec.why


def test_roles_and_defaults_from_yaml_shapes() -> None:
    assert fault(kind="node_kill", duration="1m").node == "stream_leader"
    assert fault(kind="storage_damage", duration="1m").node == "follower"
    spec = fault(kind="partition", node="n2", stream="router-dlq", duration="1m")
    assert (spec.node, spec.stream) == ("n2", "router-dlq")
    assert fault(kind="leader_stepdown", group="meta", duration="5s").group == "meta"
    with pytest.raises(ValueError, match="damage"):
        fault(kind="storage_damage", damage="shred", duration="1m")
    assert fault(kind="storage_damage", duration="1m").restart == "at_once"
    assert fault(kind="storage_damage", restart="at_heal", duration="1m").restart == "at_heal"
    with pytest.raises(ValueError, match="restart"):
        fault(kind="storage_damage", restart="later", duration="1m")


def test_a_kind_with_a_timeout_floor_gets_it_from_the_runner(tmp_path: Path) -> None:
    runner = FaultRunner(None, Journal(tmp_path / "j.json"), timeout=10)  # type: ignore[arg-type]
    slow = DRIVERS["storage_damage"](fault(kind="storage_damage", duration="1m"), None, "k")  # type: ignore[arg-type]
    quick = DRIVERS["toxic"](
        fault(kind="toxic", proxy="p", type="latency", duration="1m"),
        None,
        "k",  # type: ignore[arg-type]
    )
    assert runner._timeout(slow) == 40.0
    assert runner._timeout(quick) == 10.0


def test_the_cluster_slot_has_a_system_user_for_meta_requests(tmp_path: Path) -> None:
    """A meta leader stepdown is answered on the system account only: the slot's nodes have one
    with a user, anonymous clients land in the application account, and the target names the
    system user for the stepdown driver."""
    stack = stack_with_ports(tmp_path, 3)
    config = stack.component("nats-n1").config(stack.ctx)  # type: ignore[attr-defined]
    assert config["system_account"] == "SYS" and config["no_auth_user"] == "app"
    assert config["accounts"]["APP"]["jetstream"] == "enabled"
    user, _, password = stack.target().topology.system_user.partition(":")
    assert config["accounts"]["SYS"]["users"] == [{"user": user, "password": password}]
