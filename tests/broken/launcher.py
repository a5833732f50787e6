"""Launch the broken runs (runs.py) at once, each a process of its own, and wait for each.

Every run starts its stack on ports of its own range (HARNESS_PORT_RANGE): two processes that
start stacks at the same moment could otherwise be handed the same free port by the kernel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from harness.stack.ports import PORT_RANGE_ENV
from tests.broken.runs import SPECS, BrokenRun, harness_env, result_path

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
        if name not in self.processes:  # a test the selection did not show (getfixturevalue)
            self.launch([name])
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


def needed(items: Iterable[object]) -> list[str]:
    """The broken runs that test items (a session's selected tests) use, in SPECS order."""
    used = {f for item in items for f in getattr(item, "fixturenames", ())}
    return [name for fixture, name in FIXTURES.items() if fixture in used]
