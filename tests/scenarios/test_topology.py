"""A scenario's topology: cluster scenarios run on cluster slots only, and a run refuses a
scenario that no slot of it can take."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.config import PROFILES, NatsTopology, Target
from harness.paths import project_root
from harness.plan import auto_cluster_slots, fits, slot_plan, unplaceable
from harness.scenario import Scenario, load_scenarios, scenario_files

CLUSTER = project_root() / "scenarios" / "cluster"


def _target(kind: str) -> Target:
    return Target(
        name=kind,
        nats_url="nats://127.0.0.1:1",
        toxiproxy_url="http://127.0.0.1:1",
        prometheus_url="http://127.0.0.1:1",
        alertmanager_url="http://127.0.0.1:1",
        topology=NatsTopology(kind=kind),
    )


def test_cluster_scenarios_declare_their_topology_and_belong_to_the_catalogue() -> None:
    cluster = [s for s, _ in load_scenarios(CLUSTER).values()]
    whole = load_scenarios(project_root() / "scenarios")  # cluster/ included
    assert len({s.base_id for s in cluster}) >= 7
    assert all(s.topology == "cluster" for s in cluster)
    assert {s.id for s in cluster} <= set(whole)
    assert all(
        (s.topology == "cluster") == (path.parent.name == "cluster") for s, path in whole.values()
    )


def test_placement_refuses_a_topology_no_slot_has() -> None:
    cl = next(s for s, _ in load_scenarios(CLUSTER).values())
    one = next(s for s, _ in load_scenarios(project_root() / "scenarios").values())
    single, cluster = _target("single"), _target("cluster")
    assert fits(cl, cluster) and not fits(cl, single)
    assert fits(one, single) and not fits(one, cluster)
    assert unplaceable([cl, one], [single, cluster]) == []
    [problem] = unplaceable([cl, one], [single])
    assert problem.startswith(f"{cl.id} needs a cluster NATS target")
    assert "--nats-cluster" in problem


def test_run_refuses_a_cluster_scenario_on_a_single_node_target(tmp_path: Path) -> None:
    target = tmp_path / "single.yaml"
    target.write_text(
        "name: single\nnats_url: nats://127.0.0.1:1\ntoxiproxy_url: http://127.0.0.1:1\n"
        "prometheus_url: http://127.0.0.1:1\nalertmanager_url: http://127.0.0.1:1\n"
    )
    cmd = [sys.executable, "-m", "harness", "run", "CL-001", "--scenarios", str(CLUSTER)]
    done = subprocess.run(
        [*cmd, "--target", str(target)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "1000"},
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "CL-001 needs a cluster NATS target" in done.stdout + done.stderr


def _scenario(sid: str, kind: str, baseline: str = "1m") -> Scenario:
    return Scenario.model_validate(
        {
            "id": sid,
            "title": sid,
            "topology": kind,
            "faults": [{"kind": "poison", "fraction": 0.1, "start": "0s", "duration": "1m"}],
            "timeouts": {"baseline": baseline},
        }
    )


def test_the_slot_plan_gives_each_slot_only_scenarios_of_its_topology() -> None:
    scenarios = [
        _scenario("S1", "single", "9m"),
        _scenario("S2", "single"),
        _scenario("CL-001", "cluster"),
        _scenario("CL-002", "cluster", "5m"),
    ]
    plan, left = slot_plan(scenarios, PROFILES["local"], ["single", "cluster", "cluster"])
    assert left == []
    assert [[s.id for s in slot] for slot in plan] == [["S1", "S2"], ["CL-002"], ["CL-001"]]
    plan, left = slot_plan(scenarios, PROFILES["local"], ["single"])
    assert [s.id for s in left] == ["CL-002", "CL-001"]


def test_auto_adds_cluster_slots_beside_the_single_node_ones() -> None:
    assert auto_cluster_slots(5) == 3
    assert auto_cluster_slots(1) == 1


def test_a_catalogue_directory_reads_its_cluster_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "cluster").mkdir()
    (tmp_path / "a.yaml").write_text("id: S1\ntitle: a\nfaults: []\n")
    (tmp_path / "cluster" / "b.yaml").write_text("id: CL-001\ntitle: b\ntopology: cluster\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "c.yaml").write_text("id: S3\ntitle: c\n")
    assert [p.relative_to(tmp_path).as_posix() for p in scenario_files(tmp_path)] == [
        "a.yaml",
        "cluster/b.yaml",
    ]
