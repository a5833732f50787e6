"""`harness run --dry-run` against a running stack: the sample's plan is printed and nothing on
the target changes (its proxies, the router's fault hook, the journal, the lock)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness.config import Target
from harness.faults.journal import Journal
from harness.stack.stack import LocalStack
from tests.faults.live import router_faults
from tests.run.cli import harness, squash


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
    assert "'type': 'latency'" in out and "'latency': 200" in out and "'jitter': 20" in out
    assert "baseline 2m30s (5s here)" in out and "recover ≤15m (30s here)" in out
    assert "check alerts stay silent: RouterNatsConnectionDown" in out
    assert "check delivery:" in out and "'lost': 0" in out
    assert snapshot(target) == before
