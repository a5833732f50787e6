"""`harness run --dry-run` prints the plan (faults with timings, checks) and touches nothing.

Durations in a scenario are production time; the plan shows them, and beside each the target's
clock (its profile's time compression), without needing a running stack.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from harness.config import Target
from harness.faults.journal import Journal
from harness.stack.ports import free_port
from harness.stack.stack import LocalStack
from tests.faults.live import router_faults
from tests.run.cli import harness, scenarios, squash

PLAN = """\
id: PLAN-001
title: Two faults and checks for the plan
faults:
  - kind: toxic
    proxy: router_nats
    type: latency
    attributes: {latency: 750}
    start: 1m30s
    duration: 10m
  - kind: proxy_down
    proxy: router_nats
    start: 15m
    duration: 2m30s
workload:
  rate: 40
  mix: {valid: 0.9, poison: 0.1}
expect:
  metrics:
    - query: sum(rate(router_nats_ack_total[$window]))
      moved: down
  alerts:
    forbid: [RouterNatsConnectionDown]
  delivery: {lost: 0, max_duplicates_per_message: 3}
timeouts:
  baseline: 3m30s
  recover: 22m30s
"""


def snapshot(target: Target) -> dict[str, object]:
    """Everything a run could change on the target, read straight from it."""
    journal = Journal.for_target(target)
    lock = journal.path.parent / "run.lock"
    return {
        "proxies": httpx.get(f"{target.toxiproxy_url}/proxies", timeout=5).json(),
        "router_faults": router_faults(target),
        "journal": journal.path.read_text() if journal.path.exists() else None,
        "lock": lock.read_text() if lock.exists() else None,
        "state_files": sorted(p.name for p in journal.path.parent.iterdir()),
    }


@pytest.mark.live
def test_dry_run_prints_the_sample_plan_and_leaves_the_target_alone(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    before = snapshot(target)
    result = harness("run", "SAMPLE-001", "--target", str(clean_stack.target_path), "--dry-run")
    out = squash(result.stdout + result.stderr)
    assert result.returncode == 0, out
    assert "SAMPLE-001 Sample - upstream latency" in out
    assert "time compression ×30" in out
    assert "fault 0: toxic at +1m (2s here) for 5m (10s here)" in out
    assert "type=latency" in out and "attributes.latency=200" in out and "jitter=20" in out
    assert "baseline 2m30s (5s here)" in out and "recover ≤15m (30s here)" in out
    assert "check alerts stay silent: RouterNatsConnectionDown" in out
    assert "check delivery:" in out and "lost=0" in out
    assert snapshot(target) == before


def test_dry_run_needs_no_reachable_target(tmp_path: Path) -> None:
    """Against a target whose every endpoint is a closed port, the plan still prints: proof
    that a dry run contacts nothing."""
    dead = lambda scheme: f"{scheme}://127.0.0.1:{free_port('127.0.0.1')}"  # noqa: E731
    target_file = tmp_path / "dead-target.yaml"
    target_file.write_text(
        yaml.safe_dump(
            {
                "name": "nowhere",
                "kind": "external",
                "nats_url": dead("nats"),
                "toxiproxy_url": dead("http"),
                "prometheus_url": dead("http"),
                "alertmanager_url": dead("http"),
                "router_metrics_urls": [dead("http") + "/metrics"],
                "proxies": {"router_nats": {"listen": "127.0.0.1:1", "upstream": "127.0.0.1:2"}},
            }
        )
    )
    directory = scenarios(tmp_path / "scenarios", PLAN=PLAN)
    state = tmp_path / "state"
    result = harness(
        "run",
        "PLAN-001",
        "--target",
        str(target_file),
        "--scenarios",
        str(directory),
        "--dry-run",
        "--out",
        str(tmp_path / "out"),
        env={"HARNESS_STATE_DIR": str(state)},  # where an external target's lock would go
    )
    out = squash(result.stdout + result.stderr)
    assert result.returncode == 0, out
    # a factor-1 (staging) target: the production-length plan, no second clock
    assert "target nowhere, profile staging: time compression ×1" in out
    assert "workload: 40 msg/s" in out
    assert "baseline 3m30s →" in out
    assert "fault 0: toxic at +1m30s for 10m " in out and "attributes.latency=750" in out
    assert "fault 1: proxy_down at +15m for 2m30s" in out
    assert "check metric: sum(rate(router_nats_ack_total[$window]))" in out
    assert "moved=down" in out
    assert "check alerts stay silent: RouterNatsConnectionDown" in out
    assert "max_duplicates_per_message=3" in out
    assert not (tmp_path / "out").exists(), "a dry run writes no run directory"
    assert not state.exists(), "a dry run takes no lock and keeps no journal"


def test_dry_run_on_a_profile_needs_no_target_at_all(tmp_path: Path) -> None:
    """`--profile` alone: the plan on that profile's clock, with no target file and no stack."""
    directory = scenarios(tmp_path / "scenarios", PLAN=PLAN)
    run_dir = tmp_path / "no-stack-here"
    for profile, fault in (
        ("local", "fault 0: toxic at +1m30s (3s here) for 10m (20s here)"),
        ("staging", "fault 0: toxic at +1m30s for 10m "),
    ):
        result = harness(
            "run", "PLAN-001", "--scenarios", str(directory), "--dry-run",
            "--profile", profile, "--run-dir", str(run_dir),
        )  # fmt: skip
        out = squash(result.stdout + result.stderr)
        assert result.returncode == 0, out
        assert f"profile {profile}" in out and fault in out, out
        assert "fault 1: proxy_down at +15m" in out
    assert not run_dir.exists()


def test_dry_run_shows_each_alert_objective_from_the_contract(tmp_path: Path) -> None:
    directory = scenarios(
        tmp_path / "scenarios",
        PLAN=PLAN.replace("  alerts:\n", "  alerts:\n    fire: [RouterNatsHighAckFailureRate]\n"),
    )
    result = harness(
        "run", "PLAN-001", "--scenarios", str(directory), "--dry-run", "--profile", "local"
    )
    out = squash(result.stdout + result.stderr)
    assert result.returncode == 0, out
    assert (
        "check alert fires: RouterNatsHighAckFailureRate (fires within 10m30s (21s here), "
        "notifies router-critical)"
    ) in out
