"""The whole catalogue live on the local stack, through the real CLI, against a router without
the fault hook and without /readyz: every scenario and boundary variant passes, one test per
scenario so a failure names it, and the run's evidence and JUnit say so."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness.evidence.record import EVIDENCE_SCHEMA
from harness.stack.slots import default_slots
from tests.conftest import SINGLE_NODE_CATALOGUE, CatalogueRun

pytestmark = pytest.mark.live

CATALOGUE = SINGLE_NODE_CATALOGUE  # the cluster scenarios: see the fixture (tests/conftest.py)
SLOTS = default_slots()
PHASES = ["preflight", "baseline", "inject", "observe", "heal", "recover", "verdict"]


def scenario(run: CatalogueRun, scenario_id: str) -> dict:
    (found,) = [s for s in run.evidence["scenarios"] if s["scenario_id"] == scenario_id]
    return found


@pytest.mark.parametrize("scenario_id", CATALOGUE)
def test_scenario_passes_live(catalogue_run: CatalogueRun, scenario_id: str) -> None:
    s = scenario(catalogue_run, scenario_id)
    failed = {c["name"]: c["summary"] for c in s["checks"] if c["status"] != "pass"}
    assert s["verdict"] == "passed", (s["reason"], failed)
    assert [p["phase"] for p in s["phases"]] == PHASES
    assert all(f["heal"]["healed"] for f in s["faults"])
    for check in s["checks"]:
        if check["kind"] == "alert":
            e = check["evidence"]
            assert e["time_to_fire_s"] <= e["objective_s"], e
            assert e["contract"]["receiver"] in {n["receiver"] for n in e["notifications"]}
        if check["kind"] == "boundary":
            assert check["evidence"]["value"] is not None


def test_the_run_as_a_whole(catalogue_run: CatalogueRun) -> None:
    evidence = catalogue_run.evidence
    assert catalogue_run.returncode == 0, catalogue_run.stderr[-3000:]
    assert evidence["schema"] == EVIDENCE_SCHEMA
    assert evidence["time_compression"] == 30
    assert {s["scenario_id"] for s in evidence["scenarios"]} == set(CATALOGUE)
    # the router had neither the hook nor /readyz, and the scenarios did not need them
    target = evidence["target"]
    assert target["router_ready_urls"] == []
    assert CATALOGUE and not any(s.startswith("CL-") for s in CATALOGUE)
    # in parallel isolated slots, each scenario starting from fresh alert state, each on a
    # slot of its topology
    assert len(evidence["slots"]) == SLOTS
    assert len({s["target"] for s in evidence["scenarios"]}) == SLOTS
    topology = {t["name"]: t["topology"]["kind"] for t in evidence["slots"]}
    for s in evidence["scenarios"]:
        kind = "cluster" if s["scenario_id"].startswith("CL-") else "single"
        assert topology[s["target"]] == kind, s["scenario_id"]
    assert all(s["preflight"]["alerting_reset_s"] >= 0 for s in evidence["scenarios"])
    suites = ET.parse(catalogue_run.out / "junit.xml").getroot()
    assert suites.get("failures") == "0" and suites.get("errors") == "0"
    cases = [c for c in suites.iter("testcase")]
    assert len(cases) == sum(len(s["checks"]) + len(s["faults"]) for s in evidence["scenarios"])
    # each case carries its check's own observation time, not a share of the scenario's
    assert len({c.get("time") for c in cases}) > 1
