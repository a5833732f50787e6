"""One run per target: a second `harness run`, and `harness heal`, are refused while a run holds
the target's lock, with a message naming the run; neither touches the fault in effect."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

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


def test_second_run_and_heal_are_refused_while_a_run_holds_the_target(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    directory = scenarios(
        tmp_path / "scenarios",
        HOLD=long_toxic("HOLD-001"),
        SECOND=quick_toxic("SECOND-001"),
    )
    first = HarnessRun(clean_stack.target_path, directory, tmp_path / "first", "HOLD-001")

    def run_second(out: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        target_file, scenario_dir = str(clean_stack.target_path), str(directory)
        return harness(
            "run", "SECOND-001", "--target", target_file, "--scenarios", scenario_dir,
            "--out", str(tmp_path / out), timeout=timeout,
        )  # fmt: skip

    try:
        toxic = wait_for_toxic(first, target)
        holder = run_id_of(toxic, "HOLD-001")
        journal = Journal.for_target(target)
        before = journal.path.read_text()

        second = run_second("second")
        out = squash(second.stdout + second.stderr)
        assert second.returncode == 3, out
        assert f"under test by run {holder}" in out, out
        assert f"pid {first.pid}" in out, out
        assert toxics(target) == [toxic], "the refused run must not add or heal a fault"
        assert journal.path.read_text() == before

        heal = harness("heal", "--target", str(clean_stack.target_path))
        out = squash(heal.stdout + heal.stderr)
        assert heal.returncode != 0, out
        assert f"under test by run {holder}" in out, out
        assert toxics(target) == [toxic], "a refused heal must not pull the fault from under a run"
        assert [e["key"] for e in json.loads(journal.path.read_text())] == [
            toxic.removeprefix("harness_")
        ]
        assert first.proc.poll() is None, "the first run carries on"

        first.signal(signal.SIGTERM)
        assert first.wait(30) == 130, first.output()
    finally:
        first.stop()
    assert toxics(target) == []

    # With the lock released, the same second run is accepted.
    again = run_second("again", timeout=90)
    assert again.returncode in (0, 1), squash(again.stdout + again.stderr)
    assert "under test by run" not in again.stdout + again.stderr
    assert (tmp_path / "again" / "harness.log.jsonl").exists()
