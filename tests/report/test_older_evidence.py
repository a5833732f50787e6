"""Evidence of the previous schema (v2: check evidence as dicts, recovery decided while
polling) still reports: each check kind upgrades its part, and the report reads typed fields
(each scenario's plan and preflight record too, in v2 and v3 evidence alike)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.checks.alerts import AlertEvidence
from harness.checks.registry import check_class
from harness.evidence.bundle import read_evidence
from harness.evidence.record import EVIDENCE_SCHEMA, PreflightRecord
from harness.plan import ScenarioPlan
from harness.report.build import write_report


def test_v2_evidence_is_read_typed_and_keeps_its_schema_name(a2: Path, b1: Path) -> None:
    for run in (a2, b1):
        assert json.loads((run / "evidence.json").read_text())["schema"] == "harness.evidence/v2"
        record = read_evidence(run)
        assert record.schema_ == "harness.evidence/v2" != EVIDENCE_SCHEMA
        checks = [c for s in record.scenarios for c in s.checks]
        assert checks
        for c in checks:
            assert isinstance(c.evidence, check_class(c.kind).evidence_model)
        alerts = [c.evidence for c in checks if isinstance(c.evidence, AlertEvidence)]
        assert alerts and all(a.contract is not None and a.alertmanager for a in alerts)


def test_harness_report_writes_the_report_of_v2_evidence(a2: Path, tmp_path: Path) -> None:
    written = write_report([a2], tmp_path, workers=1)
    html = written.html.read_text()
    assert "S1@above" in html and "RouterNatsHighAckFailureRate" in html
    assert "Alertmanager held" in html  # the receipts, read from the typed sightings
    assert "Delivery ledger" in html and "lost (acked, never answered nor dead-lettered)" in html
    assert "plan on the target's clock: ×30.0, baseline 10.0s, recover ≤ 60.0s." in html


def test_an_unknown_check_kind_is_a_clear_problem_not_a_trace(a2: Path, tmp_path: Path) -> None:
    from harness.report.runs import RunDirProblem, load_run

    doc = json.loads((a2 / "evidence.json").read_text())
    doc["scenarios"][0]["checks"][0]["kind"] = "telepathy"
    (tmp_path / "evidence.json").write_text(json.dumps(doc))
    with pytest.raises(RunDirProblem, match=r"not a run record of this harness.*checks\.0"):
        load_run(tmp_path)


def test_plan_and_preflight_are_read_typed_from_v2_and_v3_evidence(a2: Path, b1: Path) -> None:
    r3 = Path(__file__).parent / "fixtures" / "r3"
    for run in (a2, b1, r3):
        doc = json.loads((run / "evidence.json").read_text())
        record = read_evidence(run)
        for raw, scenario in zip(doc["scenarios"], record.scenarios, strict=True):
            plan, preflight = scenario.plan, scenario.preflight
            assert isinstance(plan, ScenarioPlan) and isinstance(preflight, PreflightRecord)
            assert plan.factor == raw["plan"]["factor"] == 30.0
            assert [f.duration_s for f in plan.faults] == [
                f["duration_s"] for f in raw["plan"]["faults"]
            ]
            assert [p.name for p in preflight.probes][:2] == ["nats", "toxiproxy"]
            assert all(p.ok for p in preflight.probes)
            assert preflight.toxiproxy is not None and "router_nats" in preflight.toxiproxy.toxics
            assert preflight.capabilities == "every fault is possible on this target"
            # written back as read: nothing added, nothing lost
            assert scenario.model_dump(mode="json")["preflight"] == raw["preflight"]
            assert scenario.model_dump(mode="json")["plan"] == raw["plan"]
    assert read_evidence(r3).scenarios[0].preflight.alerting_reset_s == 0.23  # type: ignore[union-attr]


def test_a_scenario_without_plan_or_preflight_reads_as_none(a2: Path, tmp_path: Path) -> None:
    """Evidence wrote `{}` for a scenario stopped before its plan or preflight."""
    doc = json.loads((a2 / "evidence.json").read_text())
    doc["scenarios"][0] |= {"plan": {}, "preflight": {}}
    (tmp_path / "evidence.json").write_text(json.dumps(doc))
    scenario = read_evidence(tmp_path).scenarios[0]
    assert scenario.plan is None and scenario.preflight is None
    written = write_report([tmp_path], tmp_path / "report", workers=1)
    html = written.html.read_text()
    assert 'data-scenario="S1@above"' in html and "plan on the target's clock" not in html
