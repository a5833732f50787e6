"""Fixtures: the broken runs of runs.py (A: rules and routing, B: router code and a dashboard,
C: dashboard panels only, cluster: the NATS cluster alerts), all started at once.

The first test that needs any broken run launches every broken run the session's selected tests
need, each a process of its own (`python -m tests.broken.runs`), so tests/broken/ costs about
as much wall time as its longest run, not the sum. Each module's fixture then waits for its
own run and reads its evidence; runs still going at the end of the session are stopped (their
stacks with them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack.ports import PORT_RANGE_ENV
from tests.broken.breakages import break_rules_and_routing
from tests.broken.runs import REPO_DEPLOY, SPECS, BrokenRun, harness_env, result_path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = {f"broken_{name}": name for name in SPECS}
"""The module fixture that hands a test each broken run."""
PORTS_PER_RUN = 1000
FIRST_PORT = 20000
"""Each run starts its stack on ports of its own range (HARNESS_PORT_RANGE), below the kernel's
ephemeral range: runs that start stacks at once can never be handed the same free port."""
WAIT_TIMEOUT_S = 900
"""How long a test waits for its run: start, `harness run` (bounded by runs.RUN_TIMEOUT_S) and
stop of its stack, all while the other runs share the machine."""
STOP_TIMEOUT_S = 120


class BrokenRuns:
    """The broken runs of a session, each a process writing under its own base directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def launch(self, names: list[str]) -> None:
        path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        for name in names:
            base = self.root / name
            base.mkdir()
            env = harness_env(PYTHONPATH=path, **{PORT_RANGE_ENV: port_range(name)})
            with (base / "runner.log").open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "tests.broken.runs", name, str(base)],
                    stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                )  # fmt: skip

    def wait(self, name: str) -> BrokenRun:
        process = self.processes[name]
        base = self.root / name
        try:
            code = process.wait(timeout=WAIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.stop(name)
            raise AssertionError(f"broken run {name} took over {WAIT_TIMEOUT_S}s") from None
        log = (base / "runner.log").read_text(errors="replace")
        assert code == 0 and result_path(base).exists(), (
            f"broken run {name} failed (exit {code}):\n{log[-5000:]}"
        )
        result = json.loads(result_path(base).read_text())
        out = Path(result["out"])
        return BrokenRun(
            result["returncode"],
            result["stderr"],
            result["run_seconds"],
            out,
            json.loads((out / "evidence.json").read_text()),
        )

    def stop(self, name: str) -> None:
        """SIGTERM (the run stops its stack), then SIGKILL if it does not end in time."""
        process = self.processes[name]
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def port_range(name: str) -> str:
    """The run's own ports (disjoint from every other run's), as HARNESS_PORT_RANGE says them;
    a name that is no run (the run refuses it) gets the range after the last run's."""
    index = list(SPECS).index(name) if name in SPECS else len(SPECS)
    low = FIRST_PORT + PORTS_PER_RUN * index
    return f"{low}-{low + PORTS_PER_RUN - 1}"


def _needed(session: pytest.Session) -> list[str]:
    """The broken runs the session's selected tests use, in SPECS order."""
    used = {f for item in session.items for f in getattr(item, "fixturenames", ())}
    return [name for fixture, name in FIXTURES.items() if fixture in used]


@pytest.fixture(scope="session")
def broken_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokenRuns]:
    """Every broken run the selected tests need, launched together on first use."""
    runs = BrokenRuns(tmp_path_factory.mktemp("broken-runs"))
    try:
        runs.launch(_needed(request.session))
        yield runs
    finally:
        for name in runs.processes:
            runs.stop(name)


@pytest.fixture(scope="module")
def broken_a(broken_runs: BrokenRuns) -> BrokenRun:
    """Stack A: broken rules and Alertmanager routing; S1@above and S3."""
    return broken_runs.wait("a")


@pytest.fixture(scope="module")
def broken_b(broken_runs: BrokenRuns) -> BrokenRun:
    """Stack B: a broken copy of the router and a broken dashboard; S1 and S3."""
    return broken_runs.wait("b")


@pytest.fixture(scope="module")
def broken_c(broken_runs: BrokenRuns) -> BrokenRun:
    """Stack C: three broken dashboard panels, everything else unbroken; S1 and S3."""
    return broken_runs.wait("c")


@pytest.fixture(scope="module")
def broken_cluster(broken_runs: BrokenRuns) -> BrokenRun:
    """A cluster stack whose six cluster alerts are each broken once; CL-004, CL-005, CL-008."""
    return broken_runs.wait("cluster")


@pytest.fixture(scope="module")
def deploy_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stack A's broken deploy/ files alone, for what `harness validate` sees of them."""
    return break_rules_and_routing(REPO_DEPLOY, tmp_path_factory.mktemp("broken-a") / "deploy")
