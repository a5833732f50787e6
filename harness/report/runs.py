"""The run directories a report is built from: their records, and per scenario the latest
result with its history.

Several runs make one report, so the latest verdict of each scenario is what a reader sees
first; earlier results stay beside it as history rather than being dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from harness.errors import HarnessError
from harness.evidence.bundle import EvidenceSchemaError, read_evidence
from harness.evidence.junit import junit_xml
from harness.evidence.record import RunRecord, ScenarioResult


class RunDirProblem(HarnessError):
    """A run directory that cannot be read, with the reason in words."""


@dataclass(frozen=True)
class JUnitCase:
    """One JUnit test case of a scenario, as the run's junit.xml names it."""

    name: str
    status: str  # pass | fail | error
    message: str


@dataclass
class LoadedRun:
    """One run directory and its record."""

    path: Path
    record: RunRecord

    @property
    def run_id(self) -> str:
        return self.record.run_id


@dataclass
class ScenarioHistory:
    """A scenario's results across the runs, newest first; `latest` is what the report judges."""

    scenario_id: str
    results: list[tuple[LoadedRun, ScenarioResult]] = field(default_factory=list)

    @property
    def latest(self) -> ScenarioResult:
        return self.results[0][1]

    @property
    def latest_run(self) -> LoadedRun:
        return self.results[0][0]


def load_run(path: Path) -> LoadedRun:
    """A run directory (or its evidence.json); problems become a RunDirProblem, not a trace."""
    file = path / "evidence.json" if path.is_dir() else path
    if not file.is_file():
        raise RunDirProblem(f"{path}: no evidence.json")
    try:
        record = read_evidence(file)
    except json.JSONDecodeError as exc:
        raise RunDirProblem(f"{file}: not JSON (line {exc.lineno}: {exc.msg})") from None
    except EvidenceSchemaError as exc:
        raise RunDirProblem(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RunDirProblem(
            f"{file}: not a run record of this harness ({exc.error_count()} problem(s); "
            f"first at {where}: {first['msg']})"
        ) from None
    return LoadedRun(file.parent, record)


def load_runs(paths: list[Path]) -> list[LoadedRun]:
    """Every run, oldest first; the same run given twice counts once."""
    runs: dict[str, LoadedRun] = {}
    for path in paths:
        run = load_run(path)
        runs.setdefault(run.run_id, run)
    return sorted(runs.values(), key=lambda r: r.record.started_at)


def histories(runs: list[LoadedRun]) -> list[ScenarioHistory]:
    """Per scenario ID its results, newest first; scenarios in the order they first ran."""
    found: dict[str, ScenarioHistory] = {}
    for run in runs:
        for result in run.record.scenarios:
            found.setdefault(result.scenario_id, ScenarioHistory(result.scenario_id))
            found[result.scenario_id].results.append((run, result))
    for history in found.values():
        history.results.sort(key=lambda item: item[1].started_at, reverse=True)
    return list(found.values())


def junit_cases(record: RunRecord) -> dict[str, list[JUnitCase]]:
    """The JUnit cases per scenario ID, exactly as the run's junit.xml names them (the same
    function wrote that file from this record)."""
    cases: dict[str, list[JUnitCase]] = {}
    for case in junit_xml(record).getroot().iter("testcase"):
        scenario = (case.get("classname") or "").removeprefix("scenario.")
        status, message = "pass", ""
        for tag, name in (("failure", "fail"), ("error", "error")):
            child = case.find(tag)
            if child is not None:
                status, message = name, child.get("message") or ""
        if status == "pass":
            out = case.find("system-out")
            message = out.text or "" if out is not None else ""
        cases.setdefault(scenario, []).append(JUnitCase(case.get("name") or "", status, message))
    return cases


__all__ = [
    "JUnitCase",
    "LoadedRun",
    "RunDirProblem",
    "ScenarioHistory",
    "histories",
    "junit_cases",
    "load_run",
    "load_runs",
]
