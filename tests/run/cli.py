"""Drive `harness run` / `harness heal` as real subprocesses, with scenarios in a tmp dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.config import Target
from tests.faults.live import toxiproxy_state

HARNESS = [sys.executable, "-m", "harness"]
ENV = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}  # one line per message, no wrapping


def toxic_scenario(
    scenario_id: str,
    title: str,
    *,
    latency: int,
    duration: str,
    rate: int = 5,
    baseline: str = "1s",
    delivery: bool = False,
) -> str:
    """A scenario holding one latency toxic on router_nats: what heal, lock and service tests
    drive (with `delivery`, a delivery check so the run has a verdict to reach)."""
    expect = "expect:\n  delivery: {lost: 0, max_duplicates_per_message: 2}\n" if delivery else ""
    return (
        f"id: {scenario_id}\ntitle: {title}\nfaults:\n  - kind: toxic\n    proxy: router_nats\n"
        f"    type: latency\n    attributes: {{latency: {latency}}}\n    start: 0s\n"
        f"    duration: {duration}\nworkload:\n  rate: {rate}\n{expect}"
        f"timeouts:\n  baseline: {baseline}\n"
    )


def long_toxic(scenario_id: str, *, delivery: bool = False) -> str:
    """A latency toxic held for two minutes of the local clock (1 h of production time): a run
    to kill, signal, lock out or stop, which must not end by itself while a test acts on it."""
    return toxic_scenario(
        scenario_id, "A latency toxic held for minutes", latency=20, duration="1h",
        delivery=delivery,
    )  # fmt: skip


def quick_toxic(scenario_id: str, *, delivery: bool = False) -> str:
    """A one-second latency toxic: a run that completes at once."""
    return toxic_scenario(
        scenario_id, "A one-second latency toxic", latency=5, duration="1s", delivery=delivery
    )


def scenarios(directory: Path, **texts: str) -> Path:
    """Write one scenario file per keyword (`ID=text`) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (directory / f"{name.lower()}.yaml").write_text(text)
    return directory


def squash(text: str) -> str:
    return " ".join(text.split())


def harness(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HARNESS, *args],
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class HarnessRun:
    """`harness run` in the background; output to files (no pipe can fill up and block it)."""

    def __init__(self, target_path: Path, scenario_dir: Path, out: Path, *ids: str):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.stdout = out.parent / f"{out.name}.stdout"
        self.stderr = out.parent / f"{out.name}.stderr"
        argv = [
            *HARNESS,
            "run",
            *ids,
            "--target",
            str(target_path),
            "--scenarios",
            str(scenario_dir),
            "--out",
            str(out),
        ]
        with self.stdout.open("w") as so, self.stderr.open("w") as se:
            self.proc = subprocess.Popen(argv, stdout=so, stderr=se, env=ENV)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, signum: signal.Signals) -> None:
        os.kill(self.proc.pid, signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def record(self) -> dict[str, Any]:
        """The run's evidence.json."""
        path = self.out / "evidence.json"
        if not path.exists():
            raise AssertionError(f"no evidence.json in {self.out}:\n{self.output()}")
        return json.loads(path.read_text())

    def log_events(self) -> list[dict[str, Any]]:
        path = self.out / "harness.log.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        """Make sure it is gone (test teardown): SIGTERM (it heals), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def wait_for_toxic(run: HarnessRun, target: Target, timeout: float = 30.0) -> str:
    """The name of the toxic the run applied on router_nats, once the Toxiproxy API shows it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        toxics = toxiproxy_state(target.toxiproxy_url)["router_nats"]["toxics"]
        if toxics:
            assert len(toxics) == 1 and toxics[0].startswith("harness_"), toxics
            return toxics[0]
        code = run.proc.poll()
        assert code is None, f"harness run exited ({code}) before its toxic:\n{run.output()}"
        time.sleep(0.05)
    raise AssertionError(f"no toxic on router_nats after {timeout:g}s:\n{run.output()}")


def toxics(target: Target) -> list[str]:
    return toxiproxy_state(target.toxiproxy_url)["router_nats"]["toxics"]


def run_id_of(toxic: str, scenario_id: str) -> str:
    """`harness_<run_id>-<scenario>-f0` → run_id (the driver's own naming)."""
    key = toxic.removeprefix("harness_")
    run_id, sep, _ = key.rpartition(f"-{scenario_id}-f")
    assert sep, toxic
    return run_id
