"""Cluster alert rules broken the way teams break them, caught by a cluster scenario's checks.

A cluster slot (3 nodes) starts from a copy of deploy/ whose cluster rule file has two
breakages: NatsServerUnhealthy demoted to warning (the contract says critical) and
NatsRouteMissing with a `for:` thirty times the promised one (it can never fire within the
scenario). CL-001 (stream leader killed) runs against it with the repo's untouched contract;
each breakage fails its own check, and the unbroken cluster alert of the same run
(NatsJetStreamReplicaUnhealthy) still passes beside them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack.component import StackOptions
from tests.broken.breakages import Breakage, replace_in_rule, rules_by_alert
from tests.broken.conftest import REPO_DEPLOY, BrokenRun, broken_stack, harness_env

CLUSTER_RULES = Path("prometheus") / "rules" / "nats-cluster-alerts.yml"
SCENARIO = "CL-001"

DEMOTED = Breakage(
    "NatsServerUnhealthy: severity critical -> warning",
    SCENARIO,
    "alert NatsServerUnhealthy fires",
    "severity='warning' (contract: 'critical')",
)
SLOW = Breakage(
    "NatsRouteMissing: for 1m -> 30m",
    SCENARIO,
    "alert NatsRouteMissing fires",
    "never fired",
)
BREAKAGES = (DEMOTED, SLOW)


def break_cluster_rules(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    rules = dest / CLUSTER_RULES
    reference = rules_by_alert(source / CLUSTER_RULES)
    text = rules.read_text()
    text = replace_in_rule(text, "NatsServerUnhealthy", "severity: critical", "severity: warning")
    text = replace_in_rule(text, "NatsRouteMissing", "for: 1m", "for: 30m")
    rules.write_text(text)
    broken = rules_by_alert(rules)
    changed = {a for a in reference if broken[a] != reference[a]}
    assert changed == {"NatsServerUnhealthy", "NatsRouteMissing"}, changed
    return dest


@pytest.fixture(scope="module")
def broken_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenRun]:
    base = tmp_path_factory.mktemp("broken-cluster")
    deploy = break_cluster_rules(REPO_DEPLOY, base / "deploy")
    options = StackOptions(nats_cluster=3, router_fault_hook=False, router_readyz=False)
    with broken_stack(base / "run", (SCENARIO,), deploy, options):
        started = time.monotonic()
        out = base / "out"
        result = subprocess.run(
            [sys.executable, "-m", "harness", "run", SCENARIO, "--scenarios",
             str(Path(__file__).resolve().parents[2] / "scenarios" / "cluster"),
             "--run-dir", str(base / "run"), "--out", str(out), "--no-report"],
            capture_output=True, text=True, timeout=400, env=harness_env(),
        )  # fmt: skip
        evidence = out / "evidence.json"
        assert evidence.exists(), f"no evidence (exit {result.returncode}):\n{result.stderr}"
        yield BrokenRun(
            result.returncode,
            result.stderr,
            time.monotonic() - started,
            out,
            json.loads(evidence.read_text()),
        )


@pytest.mark.live
@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.what.split(":")[0])
def test_cluster_rule_breakage_is_caught(broken_cluster: BrokenRun, breakage: Breakage) -> None:
    check = broken_cluster.check(breakage.scenario, breakage.check)
    assert check["status"] == "fail", (breakage.what, check["status"], check["summary"])
    assert breakage.caught_by in check["summary"], (breakage.what, check["summary"])


@pytest.mark.live
def test_the_unbroken_cluster_alert_passes_beside_them(broken_cluster: BrokenRun) -> None:
    check = broken_cluster.check(SCENARIO, "alert NatsJetStreamReplicaUnhealthy fires")
    assert check["status"] == "pass", check["summary"]
