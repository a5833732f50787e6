"""Boundary variants of the cluster scenarios: a variant may drop a fault, and CL-008's two
variants sit on either side of NatsJetStreamFrequentLeaderChanges with timings that keep the
rule's count their own; the plan puts them on cluster slots."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import PROFILES
from harness.contract import load_contract
from harness.paths import deploy_dir, project_root
from harness.plan import slot_plan
from harness.scenario import Scenario, load_scenarios
from harness.yamlfile import FileProblems

CLUSTER = project_root() / "scenarios" / "cluster"
ALERT = "NatsJetStreamFrequentLeaderChanges"
RULE_WINDOW_S = 15 * 60.0
"""The rule's count window (`[15m:30s]` in deploy/prometheus/rules/nats-cluster-alerts.yml)."""
RULE_STEP_S = 30.0

THREE_STEPDOWNS = """\
id: CL-900
title: Stepdowns
topology: cluster
faults:
  - {kind: leader_stepdown, start: 0s, duration: 1m}
  - {kind: leader_stepdown, start: 2m, duration: 1m}
  - {kind: leader_stepdown, start: 4m, duration: 1m}
variants:
  - name: two
    faults: {1: {start: 3m}, 2: null}
"""


def _load(tmp_path: Path, text: str) -> dict[str, Scenario]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return {k: s for k, (s, _) in load_scenarios([path]).items()}


def test_a_variant_drops_a_fault_with_null(tmp_path: Path) -> None:
    found = _load(tmp_path, THREE_STEPDOWNS)
    assert len(found["CL-900"].faults) == 3
    two = found["CL-900@two"]
    assert [f.start for f in two.faults] == [0.0, 180.0]
    assert two.fault_window == 240.0


def test_a_variant_that_drops_every_fault_is_a_positioned_problem(tmp_path: Path) -> None:
    text = THREE_STEPDOWNS.replace("{1: {start: 3m}, 2: null}", "{0: null, 1: null, 2: null}")
    with pytest.raises(FileProblems) as info:
        _load(tmp_path, text)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path}/s.yaml:9 variants[0] (two): faults: List should have at least 1 item "
        "after validation, not 0"
    ]


def test_a_variant_cannot_drop_a_fault_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(FileProblems) as info:
        _load(tmp_path, THREE_STEPDOWNS.replace("2: null", "5: null"))
    assert "variant two overrides faults [5] that do not exist" in str(info.value.problems[0])


def _cl008() -> dict[str, Scenario]:
    return {k: s for k, (s, _) in load_scenarios(CLUSTER).items() if k.startswith("CL-008")}


def _stepdowns(s: Scenario) -> list[float]:
    return sorted(f.start for f in s.faults if f.kind == "leader_stepdown" and f.group == "stream")


def test_the_rule_counts_the_window_these_timings_assume() -> None:
    rules = (deploy_dir() / "prometheus" / "rules" / "nats-cluster-alerts.yml").read_text()
    assert "[15m:30s]" in rules


def test_cl008_variants_sit_on_either_side_of_the_contract_threshold() -> None:
    threshold = load_contract().alerts[ALERT].threshold
    assert (threshold.op, threshold.value) == (">", 4)
    found = _cl008()
    above, below = found["CL-008@above"], found["CL-008@below"]
    assert above.boundary is not None and above.boundary.side == "above"
    assert below.boundary is not None and below.boundary.side == "below"
    # each stepdown is one leader change, two transitions: the fewest that trip, the most that don't
    up, down = _stepdowns(above), _stepdowns(below)
    assert threshold.tripped(2 * len(up)) and not threshold.tripped(2 * (len(up) - 1))
    assert not threshold.tripped(2 * len(down)) and threshold.tripped(2 * (len(down) + 1))
    assert up[-1] - up[0] < RULE_WINDOW_S  # all within the rule's window
    assert ALERT in above.expect.alerts.fire and ALERT in below.expect.alerts.forbid
    assert ALERT not in above.expect.alerts.forbid and ALERT not in below.expect.alerts.fire
    # the same delivery promise as the base scenario
    assert above.expect.delivery == below.expect.delivery == found["CL-008"].expect.delivery


def test_cl008_below_keeps_the_count_its_own() -> None:
    below = _cl008()["CL-008@below"]
    first, second = _stepdowns(below)
    # a leader change before the run (an earlier scenario's failover) cannot share the rule's
    # window with both stepdowns, and both have left it before heal (the next scenario's count)
    assert below.timeouts.baseline + second > RULE_WINDOW_S + RULE_STEP_S
    assert below.fault_window - second > RULE_WINDOW_S + RULE_STEP_S


def test_cl008_above_holds_until_the_third_election_is_seen() -> None:
    above = _cl008()["CL-008@above"]
    # the boundary check counts over the fault window: the last stepdown is held long enough
    # for its election (1-4 s, not compressed: up to 2m at ÷30) and the exporter's next poll
    assert above.fault_window - _stepdowns(above)[-1] >= 3 * 60


def test_the_plan_puts_the_cluster_variants_on_cluster_slots() -> None:
    scenarios = list(_cl008().values())
    plan, left = slot_plan(scenarios, PROFILES["local"], ["single", "cluster", "cluster"])
    assert left == [] and plan[0] == []
    assert sorted(s.id for slot in plan[1:] for s in slot) == [
        "CL-008",
        "CL-008@above",
        "CL-008@below",
    ]
