"""`harness rejudge` on a stored live run (tests/report/fixtures/r3: S1@above, evidence v3):
the same judges on the same observations give the same verdicts, byte for byte; a tightened
contract turns exactly the checks it affects into failures; older evidence is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.contract import default_contract_path
from harness.evidence.bundle import read_evidence
from harness.rejudge import RejudgeError, rejudge, rejudge_run

FIXTURES = Path(__file__).parent.parent / "report" / "fixtures"
R3 = FIXTURES / "r3"
ALERT = "RouterNatsHighAckFailureRate"


def stored() -> dict[str, Any]:
    return json.loads((R3 / "evidence.json").read_text())


def revised_contract(tmp_path: Path, **changes: Any) -> Path:
    """The project's contract with the ACK-failure alert's entry changed."""
    doc = yaml.safe_load(default_contract_path().read_text())
    entry = doc["alerts"][ALERT]
    for key, value in changes.items():
        if key == "threshold_value":
            entry["threshold"]["value"] = value
        else:
            entry[key] = value
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_the_fixture_is_a_live_run_with_every_check_kind() -> None:
    record = read_evidence(R3)
    kinds = {c.kind for s in record.scenarios for c in s.checks}
    assert kinds == {"metric", "alert", "alert_forbidden", "dashboard", "boundary", "delivery"}
    assert [s.verdict for s in record.scenarios] == ["passed"]


def test_rejudge_reproduces_the_stored_verdicts_exactly(tmp_path: Path) -> None:
    done = rejudge_run(R3, tmp_path / "out", report=False)
    assert done.changes == []
    written = json.loads((tmp_path / "out" / "evidence.json").read_text())
    # every scenario, check, summary and derived figure as the run wrote them, but for the one
    # panel the run checked with a per-refId statement, which the panel judge now reads as the
    # panel's whole symptom (issue 19): same status, its statement in the summary and rows
    # (the fixture predates the scenario's data-loss outcome: it had no data-loss check, so none
    # now)
    assert all(s.pop("data_loss") is None for s in written["scenarios"])
    # nor the slot check after each scenario, nor the heal's typed needs_rebuild
    assert all(s.pop("slot_after") is None for s in written["scenarios"])
    heals = [f["heal"] for s in written["scenarios"] for f in s["faults"] if f["heal"]]
    assert heals and all(h.pop("needs_rebuild") is False for h in heals)
    # nor the delivery expectation's later field, at its default (no exhaustion allowed)
    (delivery,) = [c for c in written["scenarios"][0]["checks"] if c["kind"] == "delivery"]
    assert delivery["evidence"]["expected"].pop("exhausted_valid") == 0
    expected = stored()["scenarios"]
    panels = [c for c in expected[0]["checks"] if c["kind"] == "dashboard"]
    (panel,) = [c for c in panels if c["evidence"]["expected"]["queries"]]
    assert panel["evidence"]["expected"]["queries"] == {"A": "up"}
    panel["summary"] = "3 queries; as stated: A up"
    for row in panel["evidence"]["queries"]:
        stated = row["refId"] == "A"
        row["moved"] = True if stated else None  # unstated queries need data, not a move
        row |= {"expected": "up", "flat": False} if stated else {}
    assert written["scenarios"] == expected
    assert written["unproven_forbidden"] == stored()["unproven_forbidden"]
    assert written["rejudged"]["contract"] is None and written["rejudged"]["changed"] == []
    assert (tmp_path / "out" / "junit.xml").is_file()


def test_a_tightened_detection_objective_fails_the_alert_and_nothing_else(tmp_path: Path) -> None:
    contract = revised_contract(tmp_path, detect_within="5m")  # 10 s here; it fired after 15 s
    done = rejudge_run(R3, tmp_path / "out", contract_path=contract, report=False)
    assert [(c.name, c.before, c.after) for c in done.changes] == [
        (f"alert {ALERT} fires", "pass", "fail"),
        ("verdict", "passed", "failed"),
    ]
    (result,) = done.record.scenarios
    (alert,) = [c for c in result.checks if c.kind == "alert"]
    assert "objective 10.0s" in alert.summary
    assert alert.evidence.objective_s == 10.0  # type: ignore[attr-defined]
    assert done.record.rejudged is not None and done.record.rejudged.contract == str(contract)
    before = {c.name: c.status for c in read_evidence(R3).scenarios[0].checks}
    after = {c.name: c.status for c in result.checks}
    assert {n for n in after if after[n] != before[n]} == {alert.name}


def test_a_raised_threshold_puts_the_boundary_run_on_the_wrong_side(tmp_path: Path) -> None:
    contract = revised_contract(tmp_path, threshold_value=0.05)  # observed signal ≈ 0.048
    record, changes = rejudge(read_evidence(R3), _load(contract))
    assert (f"boundary {ALERT} above threshold", "pass", "error") in {
        (c.name, c.before, c.after) for c in changes
    }
    assert record.scenarios[0].verdict == "error"


def _load(path: Path) -> Any:
    from harness.contract import load_contract

    return load_contract(path)


def test_older_evidence_keeps_no_observations_and_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RejudgeError, match="only harness.evidence/v3 runs can be re-judged"):
        rejudge(read_evidence(FIXTURES / "a2"))
    done = CliRunner().invoke(app, ["rejudge", str(FIXTURES / "a2"), "--out", str(tmp_path)])
    assert done.exit_code == 2 and "v2" in done.output


def test_cli_writes_the_new_verdict_and_its_report_beside_nothing_it_read(tmp_path: Path) -> None:
    contract = revised_contract(tmp_path, detect_within="5m")
    out = tmp_path / "rejudged"
    done = CliRunner().invoke(
        app, ["rejudge", str(R3), "--contract", str(contract), "--out", str(out)]
    )
    assert done.exit_code == 1, done.output  # a scenario now fails
    assert "pass" in done.output and "fail" in done.output
    assert {p.name for p in out.iterdir()} >= {"evidence.json", "junit.xml", "report.html"}
    assert json.loads((out / "evidence.json").read_text())["scenarios"][0]["verdict"] == "failed"
    assert 'failures="1"' in (out / "junit.xml").read_text()
    html = (out / "report.html").read_text()
    assert "re-judged" in html and f"alert {ALERT} fires: pass → fail" in html
    refused = CliRunner().invoke(app, ["rejudge", str(R3), "--out", str(R3)])
    assert refused.exit_code == 2 and "own directory" in refused.output
