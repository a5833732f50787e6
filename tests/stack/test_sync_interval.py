"""A scenario's `nats: {sync_interval: …}` without starting anything: the value parsed and
refused with file, line and field; the "restart needed?" decision read from what `/varz`
says; the nodes' configuration carrying the setting (so a node a fault restarts keeps it); the
restart order (leaders last); and preflight's refusal on a target it cannot restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import sync_apply
from harness.config import PROFILES, NatsNodeSpec, NatsTopology, Target
from harness.dataloss import Durability
from harness.faults.cluster import ClusterSnapshot
from harness.preflight import PreflightFailed
from harness.scenario import load_scenario
from harness.stack.components.nats import Nats
from harness.stack.components.nats_node import NatsNode
from harness.stack.stack import LocalStack, StackState
from harness.syncinterval import NatsSettings, mismatches
from harness.yamlfile import FileProblems
from tests.stack.test_cluster_config import stack_with_ports

SCENARIO = """\
id: CL-901
title: t
topology: cluster
nats:
  sync_interval: {value}
faults:
  - kind: node_kill
    node: stream_leader
    start: 0s
    duration: 1m
"""


def scenario_file(tmp_path: Path, value: str) -> Path:
    path = tmp_path / "cl-901.yaml"
    path.write_text(SCENARIO.format(value=value))
    return path


@pytest.mark.parametrize(
    ("given", "kept"),
    [("always", "always"), ("ALWAYS", "always"), ("120s", "2m"), ("500ms", "500ms")],
)
def test_sync_interval_values_are_normalized(given: str, kept: str) -> None:
    assert NatsSettings(sync_interval=given).sync_interval == kept


@pytest.mark.parametrize("bad", ["sometimes", "0s", "2 minutes", "-1s"])
def test_a_bad_sync_interval_names_file_line_and_field(tmp_path: Path, bad: str) -> None:
    path = scenario_file(tmp_path, bad)
    with pytest.raises(FileProblems) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert str(path) in message and ":5" in message, message  # line 5: the value
    assert "nats.sync_interval" in message and "always" in message, message


def test_a_number_without_unit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileProblems, match="nats.sync_interval"):
        load_scenario(scenario_file(tmp_path, "120"))


def test_an_unknown_nats_setting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(SCENARIO.format(value="always").replace("sync_interval", "sync"))
    with pytest.raises(FileProblems, match=r"nats\.sync"):
        load_scenario(path)


def test_scenario_sets_it_or_not(tmp_path: Path) -> None:
    scenario = load_scenario(scenario_file(tmp_path, "always"))
    assert scenario.nats is not None and sync_apply.wanted(scenario) == "always"
    assert sync_apply.wanted(scenario.model_copy(update={"nats": None})) is None


# --- restart needed? -------------------------------------------------------------------------


def node(name: str, interval: float | None = 120.0, always: bool = False, error: str | None = None):
    return Durability(node=name, sync_interval_s=interval, sync_always=always, error=error)


def test_nothing_to_restart_when_every_node_runs_it() -> None:
    assert mismatches(None, [node("n1"), node("n2")]) == []
    assert mismatches("2m", [node("n1")]) == []
    assert mismatches("always", [node("n1", always=True)]) == []
    assert mismatches("10s", [node("n1", 10.0)]) == []


def test_a_node_with_another_setting_needs_a_restart() -> None:
    assert mismatches("always", [node("n1"), node("n2", always=True)]) == ["n1: sync every 120s"]
    assert mismatches(None, [node("n1", always=True)]) == ["n1: sync always"]
    assert mismatches("10s", [node("n1")]) == ["n1: sync every 120s"]
    assert mismatches("2m", [node("n1", 120.0, always=True)]) == ["n1: sync always"]


def test_a_node_whose_setting_is_unknown_is_not_proven() -> None:
    assert mismatches("always", [node("n1", error="GET …/varz: refused")]) == [
        "n1: setting unknown (GET …/varz: refused)"
    ]


# --- the nodes' configuration ----------------------------------------------------------------


def test_cluster_node_config_carries_the_setting(tmp_path: Path) -> None:
    stack = stack_with_ports(tmp_path, 3)
    n1 = stack.component("nats-n1")
    assert isinstance(n1, NatsNode)
    assert "sync_interval" not in n1.config(stack.ctx)["jetstream"]
    stack.ctx.sync_interval = "always"
    assert n1.config(stack.ctx)["jetstream"]["sync_interval"] == "always"
    n1.command(stack.ctx)  # what a restart (a fault's, or ours) writes
    written = json.loads((tmp_path / "slot" / "nats-n1" / "nats.conf").read_text())
    assert written["jetstream"]["sync_interval"] == "always"
    assert stack.nats_components() == ["nats-n1", "nats-n2", "nats-n3"]


def test_single_node_gets_a_config_file_only_when_set(tmp_path: Path) -> None:
    stack = stack_with_ports(tmp_path, 1)
    nats = stack.component("nats")
    assert isinstance(nats, Nats)
    assert "--config" not in nats.command(stack.ctx)
    stack.ctx.sync_interval = "10s"
    argv = nats.command(stack.ctx)
    conf = Path(argv[argv.index("--config") + 1])
    assert json.loads(conf.read_text()) == {"jetstream": {"sync_interval": "10s"}}
    assert stack.nats_components() == ["nats"]


def test_attach_keeps_the_setting_a_scenario_set(tmp_path: Path) -> None:
    stack = stack_with_ports(tmp_path, 3)
    state = StackState(
        run_dir=str(stack.run_dir),
        profile=stack.ctx.profile.model_dump(mode="json"),
        host="127.0.0.1",
        ports=stack.ctx.ports,
        options={"nats_cluster": 3},
        sync_interval="always",
    )
    stack._write_state(state)
    assert LocalStack.attach(stack.run_dir).ctx.sync_interval == "always"


# --- preflight's step ------------------------------------------------------------------------


URLS = {
    "toxiproxy_url": "http://127.0.0.1:1",
    "prometheus_url": "http://127.0.0.1:1",
    "alertmanager_url": "http://127.0.0.1:1",
}


def cluster_target(kind: str = "external") -> Target:
    nodes = [
        NatsNodeSpec(
            name=f"n{i}",
            server_name=f"s{i}",
            client_url=f"nats://127.0.0.1:{4220 + i}",
            monitor_url=f"http://127.0.0.1:{8220 + i}",
        )
        for i in (1, 2, 3)
    ]
    return Target(
        name="remote",
        kind=kind,
        nats_url="nats://127.0.0.1:4221",
        topology=NatsTopology(kind="cluster", nodes=nodes),
        profile=PROFILES["local"],
        **URLS,
    )


class Ctx:
    def __init__(self, target: Target, stack: Any = None):
        self.target, self.stack, self.http = target, stack, None


def fake_varz(monkeypatch: pytest.MonkeyPatch, *rounds: list[Durability]) -> list[int]:
    calls = [0]

    async def durability(monitors: dict[str, str]) -> list[Durability]:
        calls[0] += 1
        return rounds[min(calls[0], len(rounds)) - 1]

    monkeypatch.setattr(sync_apply, "durability", durability)
    return calls


@pytest.mark.anyio
async def test_external_target_with_another_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_varz(monkeypatch, [node("n1"), node("n2"), node("n3")])
    with pytest.raises(PreflightFailed, match="needs sync always.*runs n1: sync every 120s"):
        await sync_apply.apply(Ctx(cluster_target()), "always")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_external_target_running_it_is_recorded_not_restarted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = [node(n, always=True) for n in ("n1", "n2", "n3")]
    fake_varz(monkeypatch, running)
    applied = await sync_apply.apply(Ctx(cluster_target()), "always")  # type: ignore[arg-type]
    assert applied is not None and applied.restarted == [] and applied.running == running


@pytest.mark.anyio
async def test_nothing_asked_on_an_external_target_reads_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_varz(monkeypatch, [])
    assert await sync_apply.apply(Ctx(cluster_target()), None) is None  # type: ignore[arg-type]
    assert calls == [0]


class FakeStack:
    def __init__(self) -> None:
        self.calls: list[tuple[str | None, list[str] | None]] = []

    async def set_sync_interval(self, value: str | None, order: Any, settle: Any) -> list[str]:
        self.calls.append((value, order))
        return ["nats-n1"]


@pytest.mark.anyio
async def test_local_stack_restores_its_own_setting_and_ignores_silent_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = FakeStack()
    fake_varz(monkeypatch, [node("n1"), node("n2", error="refused")])
    ctx = Ctx(cluster_target("local"), stack)
    assert await sync_apply.apply(ctx, None) is None  # type: ignore[arg-type]
    assert stack.calls == []  # a silent node is preflight's to report, not a restart's


@pytest.mark.anyio
async def test_local_single_node_restarts_and_records_what_ran(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = FakeStack()
    fake_varz(monkeypatch, [node("nats")], [node("nats", always=True)])
    target = Target(name="local", kind="local", nats_url="nats://127.0.0.1:4222", **URLS)
    monkeypatch.setattr(sync_apply, "monitors_of", lambda t: {"nats": "http://127.0.0.1:1"})
    applied = await sync_apply.apply(Ctx(target, stack), "always")  # type: ignore[arg-type]
    assert stack.calls == [("always", None)]
    assert applied is not None and applied.wanted == "always"
    assert applied.restarted == ["nats-n1"] and applied.running[0].sync_always


@pytest.mark.anyio
async def test_local_restart_that_does_not_take_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_varz(monkeypatch, [node("nats")])
    target = Target(name="local", kind="local", nats_url="nats://127.0.0.1:4222", **URLS)
    monkeypatch.setattr(sync_apply, "monitors_of", lambda t: {"nats": "http://127.0.0.1:1"})
    with pytest.raises(PreflightFailed, match="the servers report nats: sync every 120s"):
        await sync_apply.apply(Ctx(target, FakeStack()), "always")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_leaders_restart_last(monkeypatch: pytest.MonkeyPatch) -> None:
    snap = ClusterSnapshot(servers={"n1": "s1", "n2": "s2", "n3": "s3"})
    snap.jsz = {
        "n1": {  # leads the stream by its own word
            "meta_cluster": {"leader": "s2"},
            "account_details": [
                {"stream_detail": [{"name": "router-stream", "cluster": {"leader": "s1"}}]}
            ],
        },
        "n2": {"meta_cluster": {"leader": "s2"}},
        "n3": {"meta_cluster": {"leader": "s2"}},
    }

    async def snapshot(ctx: Any) -> ClusterSnapshot:
        return snap

    monkeypatch.setattr(sync_apply, "snapshot", snapshot)
    order = await sync_apply.leaders_last(Ctx(cluster_target("local")))  # type: ignore[arg-type]
    assert order == ["nats-n3", "nats-n2", "nats-n1"]


# --- a restart of ours leaves the alerts' windows before a scenario starts --------------------


class SettlingStack:
    def __init__(self, restarted_at: float | None):
        from harness.paths import deploy_dir

        self.ctx = type("Ctx", (), {"deploy_dir": deploy_dir()})()
        self.at = restarted_at

    async def set_sync_interval(self, value: str | None, order: Any, settle: Any) -> list[str]:
        raise AssertionError("no restart expected")

    def read_state(self) -> Any:
        return type("State", (), {"nats_restarted_at": self.at})()


def test_the_window_remembered_is_the_named_alerts_longest_range() -> None:
    stack, local = SettlingStack(None), PROFILES["local"]
    churn = sync_apply.remembered_s(stack, local, {"NatsJetStreamFrequentLeaderChanges"})
    assert churn == 30.0 + 1.0 + 2.0  # [15m:30s] at ×30, a scrape, two evaluations
    assert sync_apply.remembered_s(stack, local) == churn  # the longest of every rule
    assert sync_apply.remembered_s(stack, local, set()) == 3.0


@pytest.mark.anyio
async def test_preflight_waits_out_a_recent_restart_and_records_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    fake_varz(monkeypatch, [node("n1")])
    stack = SettlingStack(time.time() - 32.0)  # restarted 32 s ago: about 1 s left of 33
    scenario = load_scenario(Path("scenarios/cluster/cl-001-stream-leader-killed.yaml"))
    started = time.monotonic()
    applied = await sync_apply.prepare(Ctx(cluster_target("local"), stack), scenario)  # type: ignore[arg-type]
    assert 0.5 < time.monotonic() - started < 2.0
    assert applied is not None and applied.wanted == "default" and applied.restarted == []
    assert applied.settled_s is not None and 0.5 < applied.settled_s < 1.5


@pytest.mark.anyio
async def test_no_wait_without_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_varz(monkeypatch, [node("n1")])
    scenario = load_scenario(Path("scenarios/cluster/cl-001-stream-leader-killed.yaml"))
    ctx = Ctx(cluster_target("local"), SettlingStack(None))
    assert await sync_apply.prepare(ctx, scenario) is None  # type: ignore[arg-type]
