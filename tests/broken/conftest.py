"""Fixtures: the broken runs of runs.py (A: rules and routing, B: router code and a dashboard,
C: dashboard panels only, cluster: the NATS cluster alerts), all started at once.

The first test that needs any broken run launches every broken run the session's selected tests
need, each a process of its own (`python -m tests.broken.runs`), so tests/broken/ costs about
as much wall time as its longest run, not the sum. Each module's fixture then waits for its
own run and reads its evidence; runs still going at the end of the session are stopped (their
stacks with them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broken.breakages import break_rules_and_routing
from tests.broken.launcher import BrokenRuns, needed
from tests.broken.runs import REPO_DEPLOY, BrokenRun


@pytest.fixture(scope="session")
def broken_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokenRuns]:
    """Every broken run the selected tests need, launched together on first use."""
    runs = BrokenRuns(tmp_path_factory.mktemp("broken-runs"))
    try:
        runs.launch(needed(request.session.items))
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
