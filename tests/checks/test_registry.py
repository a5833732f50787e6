"""The check registry: one check class per kind, each kind's evidence a typed model, and the
evidence of every stored run read into its kind's model."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from harness.checks.registry import CHECKS, CheckKind, check_class
from harness.evidence.bundle import read_evidence
from harness.evidence.record import CheckEvidence, CheckResult

FIXTURES = Path(__file__).parent.parent / "report" / "fixtures"


def test_every_check_kind_has_one_class_and_an_evidence_model() -> None:
    assert set(get_args(CheckKind)) == set(CHECKS)
    for kind, cls in CHECKS.items():
        assert cls.kind == kind
        assert issubclass(cls.evidence_model, CheckEvidence)
        assert cls.evidence_model is not CheckEvidence
        cls.evidence_model()  # nothing observed yet (an error before collect) is valid
        assert cls.column in (None, "metrics", "alerts", "dashboards")


def test_evidence_is_typed_by_the_checks_kind() -> None:
    result = CheckResult(name="x", kind="boundary", status="error", summary="s")
    assert type(result.evidence) is check_class("boundary").evidence_model
    with pytest.raises(ValueError, match="extra"):
        CheckResult(name="x", kind="boundary", status="pass", summary="s", evidence={"nope": 1})
    with pytest.raises(ValueError, match="unknown check kind"):
        check_class("metrc")
    with pytest.raises(ValueError, match="unknown check kind 'metrc'"):
        CheckResult(name="x", kind="metrc", status="pass", summary="s")


@pytest.mark.parametrize("run", ["a2", "b1", "s123", "r3"])
def test_stored_runs_round_trip_through_the_typed_record(run: str) -> None:
    record = read_evidence(FIXTURES / run)
    again = type(record).model_validate(record.document())
    assert again.document() == record.document()


def test_forbidden_alerts_no_scenario_showed_able_to_fire_are_unproven() -> None:
    from harness.checks.registry import unproven_forbidden
    from harness.evidence.record import ScenarioResult

    def result(sid: str, checks: list[CheckResult]) -> ScenarioResult:
        return ScenarioResult(scenario_id=sid, base_id=sid, title=sid, run_id="r", checks=checks)

    fired = {"alert": "A", "alerts_series": [{"labels": {}, "firing": [1.0]}]}
    s1 = result(
        "S1",
        [
            CheckResult(name="a", kind="alert", status="pass", summary="", evidence=fired),
            CheckResult(
                name="b", kind="alert_forbidden", status="pass", summary="", evidence={"alert": "B"}
            ),
        ],
    )
    s2 = result(
        "S2",
        [
            CheckResult(
                name="a", kind="alert_forbidden", status="pass", summary="", evidence={"alert": "A"}
            )
        ],
    )
    assert unproven_forbidden([s1, s2]) == {"B": ["S1"]}
    assert unproven_forbidden([s2]) == {"A": ["S2"]}


def test_a_boundary_is_measured_from_when_the_first_injection_began() -> None:
    """A stepdown is proven in effect once the leader moved: counting from `applied_at` would
    miss that first change (CL-008@above once counted 2 of its 3)."""
    from types import SimpleNamespace

    from harness.checks.base import Window
    from harness.checks.boundary import measured_window
    from harness.evidence.record import Phase

    faults = [SimpleNamespace(planned_start_s=2.0), SimpleNamespace(planned_start_s=0.5)]
    run = SimpleNamespace(
        fault_window=lambda: Window(103.0, 130.0),
        span=lambda phase: SimpleNamespace(start=100.0) if phase == Phase.INJECT else None,
        result=SimpleNamespace(faults=faults),
    )
    assert measured_window(run) == Window(100.5, 130.0)  # type: ignore[arg-type]
    run.span = lambda phase: None
    assert measured_window(run) == Window(103.0, 130.0)  # type: ignore[arg-type]
