"""S1–S3 live on the local stack, through the real CLI: each passes in under 90 s, and the
run writes evidence.json and junit.xml that say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.stack.stack import LocalStack

pytestmark = pytest.mark.live


def test_s1_s2_s3_pass_live_with_evidence(local_stack: LocalStack, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", "S1", "S2", "S3",
         "--target", str(local_stack.target_path), "--out", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ},
    )  # fmt: skip
    evidence = json.loads((out / "evidence.json").read_text())
    verdicts = {s["scenario_id"]: (s["verdict"], s["reason"]) for s in evidence["scenarios"]}
    assert result.returncode == 0, f"{verdicts}\n{result.stderr[-3000:]}"
    assert evidence["schema"] == "harness.evidence/v1"
    assert evidence["time_compression"] == 30
    assert set(verdicts) == {"S1", "S2", "S3"}
    for scenario in evidence["scenarios"]:
        assert scenario["verdict"] == "passed"
        assert scenario["ended_at"] - scenario["started_at"] < 90
        kinds = {c["kind"] for c in scenario["checks"]}
        assert {"metric", "alert", "alert_forbidden", "dashboard", "delivery"} <= kinds
        assert all(c["status"] == "pass" for c in scenario["checks"])
        assert all(f["heal"]["healed"] for f in scenario["faults"])
        assert [p["name"] for p in scenario["phases"]] == [
            "preflight", "baseline", "inject", "observe", "heal", "recover", "verdict",
        ]  # fmt: skip
        fired = [c for c in scenario["checks"] if c["kind"] == "alert"]
        for check in fired:
            e = check["evidence"]
            assert e["time_to_fire_s"] <= e["budget"]["fire_s"]
            assert e["alertmanager"]["receivers"]
            assert any(n["status"] == "firing" for n in e["notifications"])
    suites = ET.parse(out / "junit.xml").getroot()
    assert suites.get("failures") == "0" and suites.get("errors") == "0"
    assert int(suites.get("tests")) == sum(
        len(s["checks"]) + len(s["faults"]) for s in evidence["scenarios"]
    )
