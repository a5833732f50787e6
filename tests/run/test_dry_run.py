"""`harness run --dry-run` prints the plan (faults with timings, checks) and touches nothing.

Durations in a scenario are production time; the plan shows them, and beside each the target's
clock (its profile's time compression), without needing a running stack (against a running one:
test_dry_run_live.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.stack.ports import free_port
from tests import inprocess
from tests.run.cli import ENV, scenarios, squash

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


def harness(*argv: str, env: dict[str, str] | None = None) -> inprocess.Ran:
    """`harness ARGV` in-process, with `env` over the CLI tests' environment."""
    return inprocess.harness(*argv, env={**ENV, **(env or {})})


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


@pytest.mark.parametrize(
    ("alerts", "promise"),
    [
        # the contract's objective
        (
            "  alerts:\n    fire: [RouterNatsHighAckFailureRate]\n",
            "fires within 10m30s (21s here), notifies router-critical)",
        ),
        # a scenario's own allowance, beside the contract's
        (
            "  alerts:\n    fire: [RouterNatsHighAckFailureRate]\n    contract:\n"
            "      RouterNatsHighAckFailureRate: {detect_within: 15m, why: measured}\n",
            "fires within 15m (30s here), notifies router-critical; the scenario's allowance, "
            "the contract's is 10m30s)",
        ),
    ],
    ids=["contract", "allowance"],
)
def test_dry_run_shows_each_alert_objective(tmp_path: Path, alerts: str, promise: str) -> None:
    directory = scenarios(tmp_path / "scenarios", PLAN=PLAN.replace("  alerts:\n", alerts))
    result = harness(
        "run", "PLAN-001", "--scenarios", str(directory), "--dry-run", "--profile", "local"
    )
    out = squash(result.stdout + result.stderr)
    assert result.returncode == 0, out
    assert f"check alert fires: RouterNatsHighAckFailureRate ({promise}" in out
