"""Every cluster fault kind live on one 3-node cluster slot (shared by the module): applied, read
back, healed, proven gone; what a client sees is observed independently of the drivers (each
node's own /routez, /healthz and /jsz, /proc, the JetStream API), and acknowledged messages are
read back after the heal. Then a `harness run` SIGKILLed mid-fault (partition, pause) and
`harness heal` leaves the cluster whole."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import nats
import pytest

from harness.config import Target
from harness.faults import driver_for
from harness.faults.journal import Journal
from harness.faults.lifecycle import FaultRunner
from harness.stack.component import StackOptions
from harness.stack.process import process_state
from harness.stack.stack import LocalStack
from tests.faults.live import fault, fault_context, poll, toxiproxy_state
from tests.run.cli import HarnessRun, harness, scenarios, squash

pytestmark = pytest.mark.live

NODES = ("n1", "n2", "n3")
STREAM = "router-stream"
SUBJECT = "beamline.router.v1.decide"


@pytest.fixture(scope="module")
def slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Target]]:
    stack = LocalStack(
        tmp_path_factory.mktemp("clfaults") / "slot", options=StackOptions(nats_cluster=3)
    )
    target = anyio.run(stack.up)
    try:
        yield stack, target
    finally:
        stack.down()


# --- independent observers -------------------------------------------------------------------


def monitor(target: Target, node: str) -> str:
    return next(n.monitor_url for n in target.topology.nodes if n.name == node)


def server(node: str) -> str:
    return f"harness-{node}"


def peers(target: Target, node: str) -> set[str]:
    routez = httpx.get(f"{monitor(target, node)}/routez", timeout=2).json()
    return {r["remote_name"] for r in routez.get("routes") or []}


def leader_by_own_word(target: Target, stream: str = STREAM) -> str | None:
    """A node whose /jsz says it leads `stream` itself (None: nobody answers so)."""
    return next(iter(sorted(leaders_by_own_word(target, stream))), None)


def leaders_by_own_word(target: Target, stream: str = STREAM) -> set[str]:
    """Every node whose /jsz says it leads `stream` itself: more than one while an isolated
    old leader has not noticed it lost its quorum."""
    found = set()
    for node in NODES:
        try:
            jsz = httpx.get(f"{monitor(target, node)}/jsz?streams=true", timeout=1).json()
        except httpx.HTTPError:
            continue
        for account in jsz.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail["name"] == stream and detail["cluster"].get("leader") == server(node):
                    found.add(node)
    return found


def whole(target: Target) -> bool:
    """Every node healthy and routed to both peers, every proxy enabled without toxics."""
    for node in NODES:
        if httpx.get(f"{monitor(target, node)}/healthz", timeout=2).status_code != 200:
            return False
        if peers(target, node) != {server(n) for n in NODES if n != node}:
            return False
    state = toxiproxy_state(target.toxiproxy_url)
    return all(p["enabled"] and not p["toxics"] for p in state.values())


def pid_of(stack: LocalStack, node: str) -> int:
    return stack.record(f"nats-{node}").pid


def client_urls(target: Target, nodes: list[str]) -> list[str]:
    return [n.client_url for n in target.topology.nodes if n.name in nodes]


async def publish(
    target: Target, count: int, prefix: str, servers: list[str] | None = None, timeout: float = 10
) -> list[int]:
    """`count` messages on the router's stream, each acknowledged: their stream sequences."""
    nc = await nats.connect(servers=servers or target.nats_servers, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=timeout)
        return [
            (await js.publish(SUBJECT, json.dumps({"request_id": f"{prefix}-{i}"}).encode())).seq
            for i in range(count)
        ]
    finally:
        await nc.close()


async def missing(target: Target, seqs: list[int]) -> list[int]:
    """Acknowledged sequences the stream no longer holds (read from its leader)."""
    nc = await nats.connect(servers=target.nats_servers, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=10)
        gone = []
        for seq in seqs:
            try:
                await js.get_msg(STREAM, seq)
            except nats.js.errors.NotFoundError:
                gone.append(seq)
        return gone
    finally:
        await nc.close()


async def settled(target: Target) -> None:
    await poll(lambda: whole(target), 60, "the cluster whole", interval=0.5)
    await poll(lambda: leader_by_own_word(target), 30, f"a leader of {STREAM}", interval=0.3)


async def run_fault(
    stack: LocalStack, target: Target, tmp_path: Path, spec: Any, key: str, during: Any = None
) -> tuple[dict[str, Any], Any, Any]:
    """Inject, observe `during(evidence)`, heal: (read-back, what `during` saw, heal outcome)."""
    await settled(target)
    journal = Journal(tmp_path / "journal.json")
    async with fault_context(target, stack) as ctx:
        runner = FaultRunner(ctx, journal, timeout=10)
        driver = driver_for(spec, ctx, key)
        evidence = await runner.inject(driver)
        seen = None
        try:
            [entry] = journal.entries()
            # journaled before the apply, with the node (or leader) resolved at apply time
            assert entry["kind"] == spec.kind
            assert entry["state"].get("node") or entry["state"].get("leader_before")
            seen = await during(evidence) if during else None
        finally:
            outcome = await runner.heal(driver)
    assert outcome.healed, outcome.errors
    assert journal.entries() == []
    await poll(lambda: whole(target), 30, "the cluster whole after heal", interval=0.5)
    return evidence, seen, outcome


def test_partition_isolates_the_stream_leader_and_heal_restores_every_route(
    slot: tuple[LocalStack, Target], tmp_path: Path
) -> None:
    stack, target = slot
    acked = anyio.run(publish, target, 50, "before-part")

    async def during(evidence: dict[str, Any]) -> dict[str, Any]:
        node = evidence["node"]
        assert peers(target, node) == set()
        others = [n for n in NODES if n != node]
        for other in others:
            assert server(node) not in peers(target, other)
        started = time.monotonic()
        new = await poll(
            lambda: next(iter(leaders_by_own_word(target) & set(others)), None),
            30,
            "a new leader in the majority",
            interval=0.2,
        )
        elected = time.monotonic() - started
        more = await publish(target, 20, "during-part", client_urls(target, others))
        try:  # a client of the isolated node: its publish reaches no quorum
            minority = await publish(target, 1, "minority", client_urls(target, [node]), 3)
        except nats.errors.TimeoutError:
            minority = "no ack within 3s"
        await poll(
            lambda: node not in leaders_by_own_word(target),
            60,
            "the isolated leader to step down",
            interval=0.2,
        )
        return {
            "new_leader": new,
            "elected_after_s": elected,
            "old_stepped_down_after_s": time.monotonic() - started,
            "acked": more,
            "minority_publish": minority,
        }

    spec = fault(kind="partition", node="stream_leader", duration="30s")
    evidence, seen, outcome = anyio.run(run_fault, stack, target, tmp_path, spec, "part", during)
    assert evidence["role"] == "stream_leader" and evidence["node"] in NODES
    assert len(evidence["proxies_disabled"]) == 4
    assert evidence["routes"][evidence["node"]] == 0
    assert seen["new_leader"] != evidence["node"]
    print(f"partition: leader {evidence['node']} isolated, new leader {seen['new_leader']} "
          f"after {seen['elected_after_s']:.2f}s, the isolated one stopped claiming after "
          f"{seen['old_stepped_down_after_s']:.2f}s; a publish through the isolated node: "
          f"{seen['minority_publish']}; heal {outcome.seconds}s")  # fmt: skip
    assert outcome.evidence["routes"] and all(
        outcome.evidence["routes"][n] >= outcome.evidence["routes_before"][n] for n in NODES
    )
    assert anyio.run(missing, target, acked + seen["acked"]) == []


def test_pause_a_follower_is_state_t_and_continued_on_heal(
    slot: tuple[LocalStack, Target], tmp_path: Path
) -> None:
    stack, target = slot

    async def during(evidence: dict[str, Any]) -> dict[str, Any]:
        node = evidence["node"]
        assert process_state(pid_of(stack, node)) == "T"
        async with httpx.AsyncClient(timeout=1) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(f"{monitor(target, node)}/healthz")
        started = time.monotonic()
        acked = await publish(target, 20, "during-pause")
        took = time.monotonic() - started
        await anyio.sleep(3)  # longer than the election timeout
        return {"acked": acked, "publish_s": took}

    spec = fault(kind="node_pause", node="follower", duration="30s")
    evidence, seen, outcome = anyio.run(run_fault, stack, target, tmp_path, spec, "pause", during)
    assert evidence["proc_state"] == "T" and evidence["role"] == "follower"
    assert process_state(pid_of(stack, evidence["node"])) in ("S", "R")
    assert outcome.evidence["proc_state"] in ("S", "R")
    print(f"pause: follower {evidence['node']} stopped; 20 publishes took "
          f"{seen['publish_s']:.2f}s; heal {outcome.seconds}s")  # fmt: skip
    assert anyio.run(missing, target, seen["acked"]) == []


def test_kill_the_stream_leader_and_restart_it_with_its_store(
    slot: tuple[LocalStack, Target], tmp_path: Path
) -> None:
    stack, target = slot
    acked = anyio.run(publish, target, 50, "before-kill")

    async def during(evidence: dict[str, Any]) -> dict[str, Any]:
        node = evidence["node"]
        assert process_state(evidence["pid"]) is None
        started = time.monotonic()
        new = await poll(
            lambda: next(iter(leaders_by_own_word(target) - {node}), None),
            30,
            "a new leader",
            interval=0.2,
        )
        return {"new_leader": new, "elected_after_s": time.monotonic() - started}

    spec = fault(kind="node_kill", node="stream_leader", duration="30s")
    evidence, seen, outcome = anyio.run(run_fault, stack, target, tmp_path, spec, "kill", during)
    node = evidence["node"]
    assert evidence["before"]["stream_leaders"][STREAM] == node
    assert pid_of(stack, node) != evidence["pid"]
    print(f"kill: leader {node} killed, new leader {seen['new_leader']} after "
          f"{seen['elected_after_s']:.2f}s; restart and rejoin {outcome.seconds}s")  # fmt: skip
    assert anyio.run(missing, target, acked) == []


def test_stream_leader_stepdown_moves_the_leader(
    slot: tuple[LocalStack, Target], tmp_path: Path
) -> None:
    stack, target = slot
    spec = fault(kind="leader_stepdown", group="stream", duration="5s")
    evidence, _, outcome = anyio.run(run_fault, stack, target, tmp_path, spec, "stepdown")
    assert evidence["leader_after"] != evidence["leader_before"]
    assert outcome.method == "remove" and outcome.evidence["leader"]


def test_meta_leader_stepdown_on_the_system_account(
    slot: tuple[LocalStack, Target], tmp_path: Path
) -> None:
    stack, target = slot
    spec = fault(kind="leader_stepdown", group="meta", duration="5s")
    evidence, _, outcome = anyio.run(run_fault, stack, target, tmp_path, spec, "metastep")
    assert evidence["leader_after"] != evidence["leader_before"]
    assert outcome.evidence["leader"]


@pytest.mark.parametrize("damage", ["bitflip", "truncate"])
def test_damaged_block_of_a_follower_rejoins_current(
    slot: tuple[LocalStack, Target], tmp_path: Path, damage: str
) -> None:
    stack, target = slot
    acked = anyio.run(publish, target, 200, f"before-{damage}")
    spec = fault(kind="storage_damage", node="follower", damage=damage, bits=64, seed=1,
                 duration="10s")  # fmt: skip
    evidence, _, outcome = anyio.run(run_fault, stack, target, tmp_path, spec, damage)
    # healed, and the slot still rebuilt before its next scenario (a damaged store is not
    # trusted by the scenarios after it)
    assert outcome.healed and outcome.needs_rebuild, outcome
    assert evidence["before"]["sha256"] != evidence["after"]["sha256"]
    assert evidence["file"].endswith(".blk") and f"/nats-{evidence['node']}/" in evidence["file"]
    print(f"storage {damage}: {evidence['node']} {evidence['file']} "
          f"{evidence['before']['size']}→{evidence['after']['size']} bytes; heal {outcome.method} "
          f"{outcome.seconds}s rebuilt={outcome.evidence.get('rebuilt_store')} "
          f"errors={outcome.errors}")  # fmt: skip
    log = Path(stack.record(f"nats-{evidence['node']}").log).read_text()
    noticed = [
        line
        for line in log.splitlines()
        if any(w in line.lower() for w in ("corrupt", "checksum", "truncat", "rebuil", "lost"))
    ]
    print(f"storage {damage}: what the node logged about it: {noticed[-8:]}")
    lost = anyio.run(missing, target, acked)
    print(f"storage {damage}: acknowledged but missing after heal: {lost}")
    assert lost == []


# --- `harness run` SIGKILLed mid-fault, `harness heal` -------------------------------------------


def long_fault(scenario_id: str, fault_yaml: str) -> str:
    return (
        f"id: {scenario_id}\ntitle: A cluster fault held for minutes\ntopology: cluster\n"
        f"faults:\n{fault_yaml}"
        "    start: 0s\n    duration: 1h\nworkload:\n  rate: 5\ntimeouts:\n  baseline: 1s\n"
    )


def applied_entry(run: HarnessRun, target: Target, timeout: float = 60) -> dict[str, Any]:
    """The run's journal entry once the fault is in effect (read back: `applied_at` set)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = Journal.for_target(target).entries()
        if entries and "applied_at" in entries[0]:
            return entries[0]
        code = run.proc.poll()
        assert code is None, f"harness run exited ({code}) before its fault:\n{run.output()}"
        time.sleep(0.1)
    raise AssertionError(f"no fault in effect after {timeout:g}s:\n{run.output()}")


@pytest.mark.parametrize(
    ("kind", "fault_yaml"),
    [
        ("partition", "  - kind: partition\n    node: follower\n"),
        ("node_pause", "  - kind: node_pause\n    node: stream_leader\n"),
    ],
)
def test_sigkilled_run_is_healed_by_harness_heal(
    slot: tuple[LocalStack, Target], tmp_path: Path, kind: str, fault_yaml: str
) -> None:
    stack, target = slot
    anyio.run(settled, target)
    directory = scenarios(tmp_path / "scenarios", KILL=long_fault("KILL-001", fault_yaml))
    run = HarnessRun(stack.target_path, directory, tmp_path / "killed", "KILL-001")
    try:
        entry = applied_entry(run, target)
        run.signal(signal.SIGKILL)
        assert run.wait(10) == -signal.SIGKILL
    finally:
        run.stop()
    node = entry["state"]["node"]
    # The premise: nothing healed it.
    assert entry["kind"] == kind
    if kind == "partition":
        state = toxiproxy_state(target.toxiproxy_url)
        assert all(not state[p]["enabled"] for p in entry["state"]["proxies"])
        assert peers(target, node) == set()
    else:
        assert process_state(pid_of(stack, node)) == "T"

    healed = harness("heal", "--target", str(stack.target_path), timeout=120)
    out = squash(healed.stdout + healed.stderr)
    assert healed.returncode == 0, out
    assert f"({kind}): healed by remove" in out, out
    assert Journal.for_target(target).entries() == []
    # Whole: every route, every node healthy (JetStream current), every stream led.
    assert whole(target), out
    assert process_state(pid_of(stack, node)) in ("S", "R")
    # led (heal proved it); a resumed node may still call one more election right after
    for stream in (STREAM, "router-dlq"):
        anyio.run(poll, lambda s=stream: leader_by_own_word(target, s), 15, f"a leader of {stream}")
