"""Heal guarantees of `harness run`, live: a SIGKILLed run's toxic is healed by `harness heal`
or by the next run before it does anything else; Ctrl-C and SIGTERM heal within 2 s; Prometheus
gone mid-run leaves checks in `error` (never pass) and the fault still healed."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import anyio
import pytest

from harness.config import Target
from harness.faults.journal import Journal
from harness.stack.stack import LocalStack
from tests.run.cli import (
    HarnessRun,
    harness,
    long_toxic,
    quick_toxic,
    run_id_of,
    scenarios,
    squash,
    toxics,
    wait_for_toxic,
)

pytestmark = pytest.mark.live


def journal_keys(target: Target) -> list[str]:
    path = Journal.for_target(target).path
    return [e["key"] for e in json.loads(path.read_text())] if path.exists() else []


def killed_run_with_toxic(
    stack: LocalStack, target: Target, tmp_path: Path
) -> tuple[HarnessRun, str]:
    """A `harness run` SIGKILLed while its toxic is applied; the toxic and journal entry stay."""
    directory = scenarios(tmp_path / "scenarios", KILL=long_toxic("KILL-001"))
    run = HarnessRun(stack.target_path, directory, tmp_path / "killed", "KILL-001")
    try:
        toxic = wait_for_toxic(run, target)
        run.signal(signal.SIGKILL)
        assert run.wait(10) == -signal.SIGKILL
    except BaseException:
        run.stop()
        raise
    # The premise: nothing healed it, the journal remembers it.
    assert toxics(target) == [toxic]
    assert journal_keys(target) == [toxic.removeprefix("harness_")]
    return run, toxic


def test_sigkilled_run_is_healed_by_harness_heal(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    _, toxic = killed_run_with_toxic(clean_stack, target, tmp_path)
    key = toxic.removeprefix("harness_")

    healed = harness("heal", "--target", str(clean_stack.target_path))
    out = squash(healed.stdout + healed.stderr)
    assert healed.returncode == 0, out
    assert f"{key} (toxic): healed by remove" in out
    assert toxics(target) == []
    assert json.loads(Journal.for_target(target).path.read_text()) == []

    again = harness("heal", "--target", str(clean_stack.target_path))
    assert again.returncode == 0
    assert "nothing to heal on target local" in squash(again.stdout)


def test_sigkilled_run_is_healed_by_the_next_run_first(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    _, toxic = killed_run_with_toxic(clean_stack, target, tmp_path)
    old_key = toxic.removeprefix("harness_")
    directory = scenarios(tmp_path / "next", NEXT=quick_toxic("NEXT-001"))

    run = HarnessRun(clean_stack.target_path, directory, tmp_path / "next-run", "NEXT-001")
    try:
        code = run.wait(90)
    finally:
        run.stop()
    assert code in (0, 1), run.output()  # 1: a check failed; the run itself completed
    doc = run.record()
    [leftover] = doc["leftovers_healed"]
    assert leftover["key"] == old_key and leftover["healed"] is True
    assert leftover["method"] == "remove"
    [scenario] = doc["scenarios"]
    assert scenario["verdict"] != "interrupted"
    assert scenario["faults"][0]["heal"]["healed"] is True
    # First: the old fault was healed before the new run applied its own.
    events = run.log_events()
    order = [
        (e["event"], e.get("key"))
        for e in events
        if e.get("event") in ("fault_healed", "fault_apply", "phase_start")
    ]
    healed_at = order.index(("fault_healed", old_key))
    first_phase = next(i for i, (event, _) in enumerate(order) if event == "phase_start")
    assert healed_at < first_phase, order
    assert toxics(target) == []
    assert journal_keys(target) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_heals_within_two_seconds_and_marks_interrupted(
    clean_stack: LocalStack, target: Target, tmp_path: Path, signum: signal.Signals
) -> None:
    directory = scenarios(tmp_path / "scenarios", SIG=long_toxic("SIG-001"))
    run = HarnessRun(clean_stack.target_path, directory, tmp_path / "run", "SIG-001")
    try:
        toxic = wait_for_toxic(run, target)
        sent = time.monotonic()
        run.signal(signum)
        while toxics(target) and time.monotonic() - sent < 5:
            time.sleep(0.02)
        healed_after = time.monotonic() - sent
        code = run.wait(30)
    finally:
        run.stop()
    assert toxics(target) == [], f"{toxic} still on the proxy 5 s after {signum.name}"
    assert healed_after <= 2.0, f"healed {healed_after:.2f}s after {signum.name}"
    assert code == 130, run.output()
    doc = run.record()
    assert doc["interrupted"] is True
    [scenario] = doc["scenarios"]
    assert scenario["verdict"] == "interrupted", scenario["reason"]
    [record] = scenario["faults"]
    assert record["heal"]["healed"] is True and record["heal"]["method"] == "remove"
    assert journal_keys(target) == []
    assert run_id_of(toxic, "SIG-001") == doc["run_id"]


PROMETHEUS_GONE = """\
id: GONE-001
title: Prometheus stops while the fault is in effect
faults:
  - kind: toxic
    proxy: router_nats
    type: latency
    attributes: {latency: 20}
    start: 0s
    duration: 4m
workload:
  rate: 5
expect:
  metrics:
    - query: sum(rate(router_intake_processing_latency_seconds_count[$window]))
      moved: up
  alerts:
    forbid: [RouterNatsConnectionDown]
timeouts:
  baseline: 3m
  recover: 2m
"""


def test_prometheus_gone_mid_run_is_error_and_the_fault_still_heals(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    directory = scenarios(tmp_path / "scenarios", GONE=PROMETHEUS_GONE)
    run = HarnessRun(clean_stack.target_path, directory, tmp_path / "run", "GONE-001")
    try:
        wait_for_toxic(run, target)
        clean_stack.stop_component("prometheus")
        code = run.wait(120)
    finally:
        run.stop()
        if not clean_stack.record("prometheus").alive():
            anyio.run(clean_stack.start_component, "prometheus")
    assert code != 0, run.output()
    [scenario] = run.record()["scenarios"]
    assert scenario["verdict"] == "error", scenario["reason"]
    [fault] = scenario["faults"]
    assert fault["heal"]["healed"] is True
    assert toxics(target) == [] and journal_keys(target) == []
    by_kind = {c["kind"]: c for c in scenario["checks"]}
    for kind in ("metric", "alert_forbidden"):
        assert by_kind[kind]["status"] == "error", by_kind[kind]
    assert target.prometheus_url in by_kind["metric"]["summary"], by_kind["metric"]["summary"]
