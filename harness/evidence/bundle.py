"""evidence.json: everything a run's verdicts rest on, in a versioned schema.

Per scenario: verdict and reason, phases with timestamps, faults with their read-backs and
heal proofs, each check with status, exact queries, raw results with evaluation timestamps,
alert timelines and budgets, the ledger summary; plus the target, profile, time-compression
factor and tool versions. Rewritten atomically after each scenario, so an interrupted run
still leaves what it observed.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import __version__
from harness.config import Target

EVIDENCE_SCHEMA = "harness.evidence/v1"


def tool_versions() -> dict[str, str]:
    versions = {"harness": __version__, "python": platform.python_version()}
    for package in ("nats-py", "prometheus-api-client", "toxiproxy-python", "anyio", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def write_evidence(
    out_dir: Path, run_id: str, target: Target, results: list[dict[str, Any]], **extra: Any
) -> Path:
    """Rewrite `evidence.json` atomically with everything known so far."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "schema": EVIDENCE_SCHEMA,
        "run_id": run_id,
        "written_at": time.time(),
        "argv": sys.argv,
        "target": target.model_dump(mode="json"),
        "profile": target.profile.model_dump(mode="json"),
        "time_compression": target.profile.time_compression,
        "tools": tool_versions(),
        "scenarios": results,
        **extra,
    }
    path = out_dir / "evidence.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)
    return path
