"""evidence.json: the run record written out, the source of truth for every report.

Per scenario: verdict and reason, its plan on the target's clock, phases with timestamps,
faults with their read-backs and heal proofs, each check with status, exact queries, raw results
with evaluation timestamps, alert timelines beside the contract's objectives and the rules'
floors, the ledger; plus the target, profile, time compression, contract and tool versions.
Rewritten atomically after each scenario, so an interrupted run still leaves what it observed.
Older evidence (v2) is read through each check kind's `upgrade`, so its reports still build.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import socket
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import __version__
from harness.config import Target
from harness.contract import Contract
from harness.errors import HarnessError
from harness.evidence.record import EVIDENCE_SCHEMA, OLDER_SCHEMAS, RunRecord


class EvidenceSchemaError(HarnessError):
    """An evidence file of a schema this harness does not read."""


def tool_versions() -> dict[str, str]:
    versions = {"harness": __version__, "python": platform.python_version()}
    for package in ("nats-py", "prometheus-api-client", "toxiproxy-python", "anyio", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def new_record(run_id: str, target: Target, contract: Contract, started_by: str = "") -> RunRecord:
    """The record a run fills in, with who/what started it."""
    return RunRecord(
        run_id=run_id,
        argv=list(sys.argv),
        started_by=started_by or f"{getpass.getuser()}@{socket.gethostname()} (cli)",
        target=target.model_dump(mode="json"),
        profile=target.profile.model_dump(mode="json"),
        time_compression=target.profile.time_compression,
        contract={"version": contract.version, "alerts": sorted(contract.alerts)},
        tools=tool_versions(),
    )


def write_evidence(out_dir: Path, record: RunRecord) -> Path:
    """Rewrite `evidence.json` atomically with everything known so far."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record.written_at = time.time()
    path = out_dir / "evidence.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.document(), indent=2, default=str))
    os.replace(tmp, path)
    return path


def read_evidence(path: Path) -> RunRecord:
    """A run record back from its `evidence.json` (or the run directory holding it); older
    evidence is upgraded and keeps its schema name (it cannot be re-judged)."""
    path = path / "evidence.json" if path.is_dir() else path
    return RunRecord.model_validate(upgrade(json.loads(path.read_text()), str(path)))


def upgrade(document: dict[str, Any], source: str = "evidence") -> dict[str, Any]:
    """The JSON form of an older evidence schema as the current one reads it: each check's
    evidence through its kind's `upgrade`."""
    schema = document.get("schema")
    if schema == EVIDENCE_SCHEMA:
        return document
    if schema not in OLDER_SCHEMAS:
        raise EvidenceSchemaError(
            f"{source}: not a run record of this harness: evidence schema {schema!r} "
            f"(it reads {', '.join((EVIDENCE_SCHEMA, *OLDER_SCHEMAS))})"
        )
    from harness.checks.registry import CHECKS

    def check(c: dict[str, Any]) -> dict[str, Any]:
        kind = CHECKS.get(c.get("kind"))  # an unknown kind fails validation, with its place
        return {**c, "evidence": kind.upgrade(dict(c.get("evidence") or {}))} if kind else c

    scenarios = [
        {**scenario, "checks": [check(c) for c in scenario.get("checks") or []]}
        for scenario in document.get("scenarios") or []
    ]
    return {**document, "scenarios": scenarios}
