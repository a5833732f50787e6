"""Fixtures: broken stacks (A: rules and routing, B: router code and a dashboard, C: dashboard
panels only), each
started from its broken files, and one `harness run` of the repo's own scenarios against each
through the real CLI, judged against the repo's untouched alerting contract. Each stack has a
slot per scenario, so a run's scenarios go in parallel, isolated as `make run` runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from harness.paths import deploy_dir, project_root
from harness.stack import slots as slot_stacks
from harness.stack.component import StackOptions
from tests.broken.breakages import (
    SCENARIOS_A,
    SCENARIOS_B,
    SCENARIOS_C,
    break_dashboard,
    break_panels,
    break_router,
    break_rules_and_routing,
)

REPO_DEPLOY = deploy_dir()
REPO_ROUTER = project_root() / "router"


def harness_env(**extra: str) -> dict[str, str]:
    """The environment for a `python -m harness` subprocess: the repo's own contract and
    scenarios, no stray run dir, no line wrapping."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("HARNESS_PROJECT_DIR", "HARNESS_RUN_DIR")
    }
    return {**env, "COLUMNS": "1000", "NO_COLOR": "1", **extra}


@dataclass
class BrokenRun:
    returncode: int
    stderr: str
    seconds: float
    out: Path
    evidence: dict[str, Any]

    def scenario(self, scenario_id: str) -> dict[str, Any]:
        (scenario,) = [s for s in self.evidence["scenarios"] if s["scenario_id"] == scenario_id]
        return scenario

    def check(self, scenario_id: str, name: str) -> dict[str, Any]:
        checks = self.scenario(scenario_id)["checks"]
        (check,) = [c for c in checks if c["name"] == name]
        return check


@contextmanager
def broken_stack(
    run_dir: Path, scenarios: tuple[str, ...], deploy: Path, options: StackOptions | None = None
) -> Iterator[Path]:
    """One slot per scenario, every slot from the broken files; stopped afterwards."""
    up = partial(slot_stacks.up, run_dir, len(scenarios), deploy_dir=deploy, options=options)
    stacks = anyio.run(up)
    try:
        yield run_dir
    finally:
        slot_stacks.down(stacks)


def run_against(run_dir: Path, scenarios: tuple[str, ...], out: Path) -> BrokenRun:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", *scenarios,
         "--run-dir", str(run_dir), "--out", str(out)],
        capture_output=True, text=True, timeout=240, env=harness_env(),
    )  # fmt: skip
    seconds = time.monotonic() - started
    evidence = out / "evidence.json"
    assert evidence.exists(), f"no evidence (exit {result.returncode}):\n{result.stderr}"
    return BrokenRun(
        result.returncode, result.stderr, seconds, out, json.loads(evidence.read_text())
    )


@pytest.fixture(scope="module")
def deploy_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return break_rules_and_routing(REPO_DEPLOY, tmp_path_factory.mktemp("broken-a") / "deploy")


@pytest.fixture(scope="module")
def broken_a(deploy_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenRun]:
    """Stack A up from the broken rules and routing; its scenarios run against it."""
    run_dir = tmp_path_factory.mktemp("broken-a-stack") / "run"
    with broken_stack(run_dir, SCENARIOS_A, deploy_a):
        yield run_against(run_dir, SCENARIOS_A, tmp_path_factory.mktemp("broken-a-run") / "out")


@pytest.fixture(scope="module")
def broken_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenRun]:
    """Stack B up with a broken copy of the router and a broken dashboard; S1 and S3."""
    base = tmp_path_factory.mktemp("broken-b")
    source = break_router(REPO_ROUTER, base / "router-src")
    deploy = break_dashboard(REPO_DEPLOY, base / "deploy")
    options = StackOptions(router_source=str(source))
    with broken_stack(base / "run", SCENARIOS_B, deploy, options):
        yield run_against(base / "run", SCENARIOS_B, base / "out")


@pytest.fixture(scope="module")
def broken_c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenRun]:
    """Stack C up with three broken dashboard panels, everything else unbroken; S1 and S3."""
    base = tmp_path_factory.mktemp("broken-c")
    deploy = break_panels(REPO_DEPLOY, base / "deploy")
    with broken_stack(base / "run", SCENARIOS_C, deploy):
        yield run_against(base / "run", SCENARIOS_C, base / "out")
