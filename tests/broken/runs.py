"""The broken runs: each starts a stack from deliberately broken files, runs some of the repo's
own scenarios against it through the real CLI (judged against the repo's untouched alerting
contract), and stops the stack. Each run is its own process, so all of them go at once.

    python -m tests.broken.runs NAME BASE   # one run; BASE/result.json says how it went

A stack has a slot per scenario, so a run's scenarios also go in parallel, as `make run` runs
them. The test modules read a run's evidence through `BrokenRun`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from harness.paths import deploy_dir, project_root
from harness.stack import slots as slot_stacks
from harness.stack.component import StackOptions
from harness.stack.ports import PORT_RANGE_ENV
from tests.broken.breakages import (
    SCENARIOS_A,
    SCENARIOS_B,
    SCENARIOS_C,
    break_dashboard,
    break_panels,
    break_router,
    break_rules_and_routing,
)
from tests.broken.cluster_breakages import CLUSTER_SCENARIOS, break_cluster_rules_and_routing

REPO_DEPLOY = deploy_dir()
REPO_ROUTER = project_root() / "router"
RUN_TIMEOUT_S = 420
"""One `harness run`'s bound: with all four runs sharing two cores each `harness run` took
80-100 s (the stack's start and stop add about 20 s)."""


def harness_env(**extra: str) -> dict[str, str]:
    """The environment for a `python -m harness` subprocess: the repo's own contract and
    scenarios, no stray run dir, no line wrapping, the kernel's choice of ports."""
    dropped = ("HARNESS_PROJECT_DIR", "HARNESS_RUN_DIR", PORT_RANGE_ENV)
    env = {k: v for k, v in os.environ.items() if k not in dropped}
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

    def failing(self) -> set[tuple[str, str]]:
        """(scenario, check) of every check that did not pass."""
        return {
            (s["scenario_id"], c["name"])
            for s in self.evidence["scenarios"]
            for c in s["checks"]
            if c["status"] != "pass"
        }

    def phase_errors(self) -> dict[str, str]:
        """scenario → its phase error, for a failing assertion to say why a run went wrong."""
        return {
            s["scenario_id"]: s["phase_error"]
            for s in self.evidence["scenarios"]
            if s.get("phase_error")
        }


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


def run_against(
    run_dir: Path, scenarios: tuple[str, ...], out: Path, scenario_dir: Path | None = None
) -> BrokenRun:
    """`harness run` of `scenarios` (from `scenario_dir`, else the catalogue) on the stack."""
    where = ["--scenarios", str(scenario_dir)] if scenario_dir else []
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", *scenarios, *where,
         "--run-dir", str(run_dir), "--out", str(out)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=harness_env(),
    )  # fmt: skip
    seconds = time.monotonic() - started
    evidence = out / "evidence.json"
    assert evidence.exists(), f"no evidence (exit {result.returncode}):\n{result.stderr}"
    return BrokenRun(
        result.returncode, result.stderr, seconds, out, json.loads(evidence.read_text())
    )


@dataclass(frozen=True)
class Spec:
    """One broken run: its scenarios, and how its broken files are made under a base dir."""

    scenarios: tuple[str, ...]
    prepare: Callable[[Path], tuple[Path, StackOptions | None]]
    scenario_dir: Path | None = None


def _prepare_a(base: Path) -> tuple[Path, StackOptions | None]:
    return break_rules_and_routing(REPO_DEPLOY, base / "deploy"), None


def _prepare_b(base: Path) -> tuple[Path, StackOptions | None]:
    source = break_router(REPO_ROUTER, base / "router-src")
    return break_dashboard(REPO_DEPLOY, base / "deploy"), StackOptions(router_source=str(source))


def _prepare_c(base: Path) -> tuple[Path, StackOptions | None]:
    return break_panels(REPO_DEPLOY, base / "deploy"), None


def _prepare_cluster(base: Path) -> tuple[Path, StackOptions | None]:
    deploy = break_cluster_rules_and_routing(REPO_DEPLOY, base / "deploy")
    # a router without the fault hook and /readyz, as the cluster scenarios have been run live
    return deploy, StackOptions(nats_cluster=3, router_fault_hook=False, router_readyz=False)


SPECS = {
    "a": Spec(SCENARIOS_A, _prepare_a),  # rules and Alertmanager routing
    "b": Spec(SCENARIOS_B, _prepare_b),  # the router's code and a dashboard
    "c": Spec(SCENARIOS_C, _prepare_c),  # dashboard panels only
    "cluster": Spec(CLUSTER_SCENARIOS, _prepare_cluster, project_root() / "scenarios" / "cluster"),
}


def execute(name: str, base: Path) -> BrokenRun:
    """Run `name` under `base` (its broken files, stack and output), in this process."""
    spec = SPECS[name]
    deploy, options = spec.prepare(base)
    with broken_stack(base / "run", spec.scenarios, deploy, options):
        return run_against(base / "run", spec.scenarios, base / "out", spec.scenario_dir)


def result_path(base: Path) -> Path:
    return base / "result.json"


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through broken_stack: the stack is stopped


def main(argv: list[str]) -> int:
    name, base = argv[1], Path(argv[2])
    signal.signal(signal.SIGTERM, _terminated)
    started = time.monotonic()
    run = execute(name, base)
    result = {
        "returncode": run.returncode,
        "stderr": run.stderr,
        "run_seconds": run.seconds,
        "seconds": time.monotonic() - started,  # with the stack's start and stop
        "out": str(run.out),
    }
    result_path(base).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
