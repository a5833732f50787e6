"""Role resolution and the "cluster whole" judgement, from /jsz and /routez answers captured on a
live 3-node cluster slot (the exporter's fixtures: n1 leads router-stream, n2 the meta group,
n3 router-dlq)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from harness.faults.cluster import ClusterSnapshot, NodeNotResolved, resolve

FIXTURES = Path(__file__).parent.parent / "exporter" / "fixtures"
SERVERS = {"n1": "harness-n1", "n2": "harness-n2", "n3": "harness-n3"}


def answers() -> dict[str, dict[str, Any]]:
    return {n: json.loads((FIXTURES / f"{n}.json").read_text()) for n in SERVERS}


def snapshot(raw: dict[str, dict[str, Any]] | None = None, silent: tuple[str, ...] = ()) -> Any:
    raw = raw or answers()
    snap = ClusterSnapshot(servers=dict(SERVERS))
    for node, body in raw.items():
        if node in silent:
            snap.errors[node] = "ConnectTimeout"
            continue
        snap.jsz[node] = body["jsz"]
        snap.routez[node] = body["routez"]
    return snap


def stream(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(
        d
        for a in raw["jsz"]["account_details"]
        for d in a.get("stream_detail") or []
        if d["name"] == name
    )


def test_roles_resolved_from_each_leaders_own_word() -> None:
    snap = snapshot()
    assert resolve(snap, "stream_leader", "router-stream") == "n1"
    assert resolve(snap, "stream_leader", "router-dlq") == "n3"
    assert resolve(snap, "meta_leader", "router-stream") == "n2"
    assert resolve(snap, "n3", "router-stream") == "n3"
    assert snap.roles() == {
        "n1": ["stream_leader:router-stream"],
        "n2": ["meta_leader"],
        "n3": ["stream_leader:router-dlq"],
    }


def test_a_follower_is_a_replica_the_leader_lists_current_first() -> None:
    snap = snapshot()
    assert resolve(snap, "follower", "router-stream") == "n2"  # both current: by name
    raw = answers()
    replicas = stream(raw["n1"], "router-stream")["cluster"]["replicas"]
    replicas[0]["current"] = False  # n2 behind: the current n3 is the follower chosen
    assert resolve(snapshot(raw), "follower", "router-stream") == "n3"


def test_a_stale_claim_by_another_node_does_not_count() -> None:
    """A node that heard of a leader is not the leader's word: with n1 silent, no node claims
    router-stream, though n2 and n3 still name n1."""
    snap = snapshot(silent=("n1",))
    with pytest.raises(NodeNotResolved, match="no node claims the leadership of stream"):
        resolve(snap, "stream_leader", "router-stream")
    with pytest.raises(NodeNotResolved, match="no follower"):
        resolve(snap, "follower", "router-stream")
    assert resolve(snap, "meta_leader", "router-stream") == "n2"


def test_unknown_node_or_role_is_refused_with_the_choices() -> None:
    with pytest.raises(NodeNotResolved, match="stream_leader, follower, meta_leader, n1, n2, n3"):
        resolve(snapshot(), "leader", "router-stream")


def test_the_captured_cluster_is_whole() -> None:
    """Every node answered, routed to both peers, a meta leader, each stream led with its
    followers current in the leader's view (the followers' own views mark each other
    `current: false` and must not count)."""
    snap = snapshot()
    assert snap.whole_problems() == []
    assert snap.facts()["stream_leaders"] == {"router-dlq": "n3", "router-stream": "n1"}
    assert snap.num_routes("n1") == 8


def test_a_lagging_or_missing_replica_makes_it_not_whole() -> None:
    raw = answers()
    replicas = stream(raw["n1"], "router-stream")["cluster"]["replicas"]
    replicas[1].update(current=False, lag=12)
    snap = snapshot(raw)
    assert snap.replica_problems("router-stream", "n3") == [
        "stream router-stream: replica harness-n3 not current (current=False, lag=12, "
        "offline=False)"
    ]
    assert snap.replica_problems("router-stream", "n2") == []
    del replicas[1]
    problems = snapshot(raw).whole_problems()
    assert "stream router-stream: leader n1 lists 1 of 2 followers" in problems


def test_a_silent_node_or_missing_route_makes_it_not_whole() -> None:
    raw = answers()
    cut = copy.deepcopy(raw)
    cut["n3"]["routez"]["routes"] = [
        r for r in cut["n3"]["routez"]["routes"] if r["remote_name"] != "harness-n1"
    ]
    problems = snapshot(cut, silent=("n2",)).whole_problems()
    assert problems[0].startswith("n2 did not answer")
    assert "n3 has no route to harness-n1" in problems


def test_an_old_leader_that_still_claims_its_stream_makes_it_not_whole() -> None:
    """A paused leader resumed believes it still leads until it hears the newer term: two
    claimants are not a whole cluster, even when each view on its own looks healthy."""
    raw = answers()
    stale = stream(raw["n2"], "router-stream")
    stale["cluster"]["leader"] = "harness-n2"
    stale["cluster"]["replicas"] = copy.deepcopy(
        stream(raw["n1"], "router-stream")["cluster"]["replicas"]
    )
    raw["n3"]["jsz"]["meta_cluster"]["leader"] = "harness-n3"
    problems = snapshot(raw).whole_problems()
    assert "stream router-stream: several nodes claim to lead it: ['n1', 'n2']" in problems
    assert "several nodes claim the meta leadership: ['n2', 'n3']" in problems
