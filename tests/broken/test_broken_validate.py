"""`harness validate` on deliberately broken files, no stack running. Stack A's (breakages.py):
the slower `for:`, the raised threshold and the changed severity show in the files; the rest of
its breakages only show live (test_broken_observability_live.py). The cluster alerts'
(cluster_breakages.py): the demoted severity, the `for:` thirty times too long and the misnamed
metric show; the route, the aggregation and the per-server count only live
(test_broken_cluster_live.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.broken.breakages import RULES
from tests.broken.cluster_breakages import CLUSTER_RULES, break_cluster_rules_and_routing
from tests.broken.runs import REPO_DEPLOY, harness_env

SCENARIOS = REPO_DEPLOY.parent / "scenarios"


def _validate(project: Path, deploy: Path) -> subprocess.CompletedProcess[str]:
    project.mkdir()
    (project / "deploy").symlink_to(deploy, target_is_directory=True)
    (project / "scenarios").symlink_to(SCENARIOS, target_is_directory=True)
    return subprocess.run(
        [sys.executable, "-m", "harness", "validate"],
        capture_output=True, text=True, timeout=60, cwd=project,
        env=harness_env(HARNESS_PROJECT_DIR=str(project)),
    )  # fmt: skip


def test_validate_catches_what_can_be_seen_without_running(deploy_a: Path, tmp_path: Path) -> None:
    """The slower `for:` (its floor exceeds the objective), the raised threshold and the changed
    severity are visible in the files; the rest of stack A's breakages only show live."""
    clean = _validate(tmp_path / "clean", REPO_DEPLOY)
    assert clean.returncode == 0, clean.stderr
    broken = _validate(tmp_path / "broken", deploy_a)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    problems = [ln for ln in broken.stderr.splitlines() if not ln.startswith(("note:", "error:"))]
    assert len(problems) == 3, broken.stderr
    assert any(
        "alerts.RouterJetStreamMaxDeliverExhausted.detect_within: the rule cannot fire within 5m"
        in p
        for p in problems
    ), problems
    rules = tmp_path / "broken" / "deploy" / RULES
    assert any(
        p.startswith(
            f"{rules} RouterNatsHighAckFailureRate: the rule trips at > 0.1, the alerting "
            "contract's threshold is > 0.01"
        )
        for p in problems
    ), problems
    assert any(
        p.startswith(f"{rules} RouterDLQHighRateCritical: labels differ from the alerting contract")
        for p in problems
    ), problems


def test_validate_catches_half_the_cluster_breakages_without_running(tmp_path: Path) -> None:
    deploy = break_cluster_rules_and_routing(REPO_DEPLOY, tmp_path / "broken-deploy")
    broken = _validate(tmp_path / "broken", deploy)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    problems = [ln for ln in broken.stderr.splitlines() if not ln.startswith(("note:", "error:"))]
    rules = tmp_path / "broken" / "deploy" / CLUSTER_RULES
    expected = [
        "NatsJetStreamApiErrorRate: metric 'gnatsd_varz_jetstream_api_errors' is not in the "
        "router's metric contract",
        "alerts.NatsRouteMissing.detect_within: the rule cannot fire within 5m even in theory",
        f"{rules} NatsServerUnhealthy: labels differ from the alerting contract: "
        "severity='warning' (contract: 'critical')",
    ]
    assert len(problems) == len(expected), broken.stderr
    for text in expected:
        assert any(text in p for p in problems), (text, problems)
    assert sum(p.startswith(str(rules)) for p in problems) == 2, problems
