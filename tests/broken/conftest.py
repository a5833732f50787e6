"""Fixtures: the broken deploy copy, a local stack started from it (once per module), and one
`harness run` of the BROKEN-001 scenario against it through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from harness.paths import deploy_dir
from harness.stack.stack import LocalStack
from tests.broken.breakages import SCENARIO, break_deploy

REPO_DEPLOY = deploy_dir()


def harness_env(**extra: str) -> dict[str, str]:
    """The environment for a `python -m harness` subprocess: the repo's own deploy/ as the
    reference unless `extra` says otherwise, no stray run dir, no line wrapping."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("HARNESS_PROJECT_DIR", "HARNESS_RUN_DIR")
    }
    return {**env, "COLUMNS": "1000", "NO_COLOR": "1", **extra}


@pytest.fixture(scope="module")
def broken_deploy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repo's deploy/ with one breakage per alert (see breakages.py)."""
    return break_deploy(REPO_DEPLOY, tmp_path_factory.mktemp("broken") / "deploy")


@pytest.fixture(scope="module")
def broken_stack(
    broken_deploy: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    """The whole local stack, its Prometheus and Alertmanager configured from the broken copy."""
    stack = LocalStack(tmp_path_factory.mktemp("broken-stack") / "run", deploy_dir=broken_deploy)
    anyio.run(stack.up)
    try:
        yield stack
    finally:
        stack.down()


@dataclass
class BrokenRun:
    returncode: int
    stderr: str
    seconds: float
    out: Path
    evidence: dict[str, Any]

    @property
    def scenario(self) -> dict[str, Any]:
        (scenario,) = self.evidence["scenarios"]
        return scenario

    def check(self, name: str) -> dict[str, Any]:
        (check,) = [c for c in self.scenario["checks"] if c["name"] == name]
        return check


@pytest.fixture(scope="module")
def broken_run(broken_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> BrokenRun:
    """`harness run BROKEN-001` against the broken stack, judged against the repo's deploy/."""
    base = tmp_path_factory.mktemp("broken-run")
    scenarios = base / "scenarios"
    scenarios.mkdir()
    (scenarios / "broken-001.yaml").write_text(SCENARIO)
    out = base / "out"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", "BROKEN-001",
         "--target", str(broken_stack.target_path), "--scenarios", str(scenarios),
         "--out", str(out)],
        capture_output=True, text=True, timeout=240, env=harness_env(),
    )  # fmt: skip
    seconds = time.monotonic() - started
    evidence_file = out / "evidence.json"
    assert evidence_file.exists(), f"no evidence (exit {result.returncode}):\n{result.stderr}"
    return BrokenRun(
        result.returncode, result.stderr, seconds, out, json.loads(evidence_file.read_text())
    )
