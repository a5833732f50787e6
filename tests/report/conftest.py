"""Fixtures for the report tests: recorded evidence, the project inventory, synthetic records.
The browser test's live run comes from tests/conftest.py (`live_run_dir`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.evidence.record import (
    CheckResult,
    FaultRecord,
    HealOutcome,
    PhaseSpan,
    RunRecord,
    ScenarioResult,
)
from harness.report.build import Written, write_report
from harness.report.inventory import Inventory, load_inventory

FIXTURES = Path(__file__).parent / "fixtures"
T0 = 1_796_119_700.0


@pytest.fixture(scope="session")
def inventory() -> Inventory:
    return load_inventory()


@pytest.fixture(scope="session")
def b1() -> Path:
    return FIXTURES / "b1"


@pytest.fixture(scope="session")
def a2() -> Path:
    return FIXTURES / "a2"


@pytest.fixture(scope="session")
def written(b1: Path, a2: Path, inventory: Inventory, tmp_path_factory) -> Written:
    """The report of both recorded runs, built once for the tests that only read it."""
    return write_report([b1, a2], tmp_path_factory.mktemp("report"), inventory=inventory, workers=1)


def check(
    kind: str, status: str = "pass", name: str | None = None, at: float = T0, **evidence: Any
) -> CheckResult:
    return CheckResult(
        name=name or f"{kind} check",
        kind=kind,
        status=status,  # type: ignore[arg-type]
        summary=f"{kind} {status}",
        evidence=evidence,
        started_at=at,
        ended_at=at + 60,
    )


def scenario(
    sid: str,
    checks: list[CheckResult],
    *,
    run_id: str = "run-1",
    at: float = T0,
    verdict: str | None = None,
    healed: bool = True,
) -> ScenarioResult:
    """A scenario result with a baseline 0–10 s and one fault 10–40 s after `at`."""
    base = sid.split("@")[0]
    failed = any(c.status != "pass" for c in checks)
    return ScenarioResult(
        scenario_id=sid,
        base_id=base,
        title=f"title of {sid}",
        run_id=run_id,
        verdict=verdict or ("failed" if failed else "passed"),  # type: ignore[arg-type]
        started_at=at,
        ended_at=at + 60,
        phases=[
            PhaseSpan(phase="baseline", start=at, end=at + 10, status="ok"),
            PhaseSpan(phase="observe", start=at + 10, end=at + 40, status="ok"),
        ],
        faults=[
            FaultRecord(
                key=f"{run_id}-{sid}-f0",
                kind="toxic",
                spec={"kind": "toxic", "type": "latency"},
                planned_start_s=0,
                planned_duration_s=30,
                applied_at=at + 10,
                read_back={"toxic": {"type": "latency"}},
                heal=HealOutcome(
                    key=f"{run_id}-{sid}-f0",
                    kind="toxic",
                    healed=healed,
                    method="remove" if healed else "failed",
                    seconds=0.01,
                    at=at + 40,
                ),
            )
        ],
        checks=checks,
    )


def write_run(directory: Path, run_id: str, results: list[ScenarioResult], at: float = T0) -> Path:
    record = RunRecord(
        run_id=run_id,
        started_at=at,
        target={"name": "synthetic", "kind": "local"},
        profile={"name": "local"},
        time_compression=30.0,
        scenarios=results,
    )
    directory.mkdir(parents=True, exist_ok=True)
    import json

    (directory / "evidence.json").write_text(json.dumps(record.document()))
    return directory


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    def make(run_id: str, results: list[ScenarioResult], at: float = T0) -> Path:
        return write_run(tmp_path / run_id, run_id, results, at)

    return make
