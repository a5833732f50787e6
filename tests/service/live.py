"""`harness serve` as a real subprocess against the session's local stack, for live tests:
start, SIGKILL, restart on the same port and data dir; a client with tokens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from harness.config import Target
from harness.faults.journal import Journal
from harness.faults.toxic import SCRATCH_PREFIX
from harness.stack.ports import free_port
from harness.stack.stack import LocalStack
from tests.faults.live import toxiproxy_state
from tests.run.cli import long_toxic, toxic_scenario
from tests.service.fakes import OPERATOR, READER, TOKENS, bearer


def passing(scenario_id: str, duration: str = "30s") -> str:
    """A short latency toxic that loses nothing: a run whose verdict is `passed`."""
    return toxic_scenario(
        scenario_id, "A short latency toxic that loses nothing (service tests)", latency=5,
        duration=duration, rate=10, baseline="30s", delivery=True,
    )  # fmt: skip


OUTAGE = """\
id: OUTAGE-001
title: The router's NATS link down for an hour of production time (alert guard tests)
faults:
  - kind: proxy_down
    proxy: router_nats
    start: 0s
    duration: 1h
workload:
  rate: 5
timeouts:
  baseline: 30s
"""


def wait_until(check: Callable[[], Any], what: str, timeout: float, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last={last!r})")


def write_config(base: Path, run_dir: Path) -> Path:
    scenarios = base / "scenarios"
    scenarios.mkdir(parents=True, exist_ok=True)
    (scenarios / "long.yaml").write_text(long_toxic("LONG-001", delivery=True))
    (scenarios / "pass.yaml").write_text(passing("PASS-001"))
    (scenarios / "outage.yaml").write_text(OUTAGE)
    steady = passing("PASS-002", duration="5m")
    (scenarios / "pass-steady.yaml").write_text(steady)
    config = base / "service.yaml"
    config.write_text(f"run_dir: {run_dir}\nscenarios: {scenarios}\n")
    return config


class ServedHarness:
    """One `harness serve` process; `kill()` is SIGKILL, `start()` (re)starts it."""

    def __init__(self, base: Path, run_dir: Path, **env: str):
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = write_config(base, run_dir)
        self.data_dir = base / "data"
        self.env = {**os.environ, "HARNESS_TOKENS": TOKENS, "COLUMNS": "200", **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.base / f"serve-{self.starts}.log").open("wb")
        argv = [sys.executable, "-m", "harness", "serve", "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--config", str(self.config)]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_until(self._healthy, f"harness serve on {self.url}", 30)

    def _healthy(self) -> bool:
        assert self.proc is not None
        code = self.proc.poll()
        assert code is None, f"harness serve exited {code}:\n{self.log()}"
        return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200

    def log(self) -> str:
        return (self.base / f"serve-{self.starts}.log").read_text(errors="replace")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    # --- client ---------------------------------------------------------------------------

    def post(self, path: str, body: Any = None, token: str | None = OPERATOR) -> httpx.Response:
        headers = bearer(token) if token else {}
        return httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)

    def get(self, path: str, token: str | None = READER, **params: Any) -> httpx.Response:
        headers = bearer(token) if token else {}
        return httpx.get(f"{self.url}{path}", params=params, headers=headers, timeout=30)

    def client_delete(self, path: str, token: str | None = OPERATOR) -> httpx.Response:
        headers = bearer(token) if token else {}
        return httpx.delete(f"{self.url}{path}", headers=headers, timeout=30)

    def run(self, run_id: str) -> dict[str, Any]:
        return self.get(f"/api/runs/{run_id}").json()

    def start_run(self, scenario: str, **fields: Any) -> str:
        answer = self.post("/api/runs", {"scenarios": [scenario], **fields})
        assert answer.status_code == 202, answer.text
        return answer.json()["run_id"]

    def finished(self, run_id: str, timeout: float = 90) -> dict[str, Any]:
        return wait_until(
            lambda: (r := self.run(run_id))["status"] not in ("queued", "running") and r,
            f"run {run_id} to finish",
            timeout,
            interval=0.25,
        )


def harness_toxics(target: Target) -> list[str]:
    """Toxics on the target's real proxies: not preflight's capability probe, which lives for
    milliseconds on a scratch proxy (a test that killed the service on seeing it saw no fault)."""
    state = toxiproxy_state(target.toxiproxy_url)
    return [
        t for name, p in state.items() if not name.startswith(SCRATCH_PREFIX) for t in p["toxics"]
    ]


def assert_target_clean(target: Target) -> None:
    """Read back from Toxiproxy itself: no toxic, every proxy enabled; and an empty journal."""
    state = toxiproxy_state(target.toxiproxy_url)
    assert all(p["enabled"] and not p["toxics"] for p in state.values()), state
    assert Journal.for_target(target).entries() == []


def serving(directory: Path, stack: LocalStack) -> Iterator[ServedHarness]:
    """A `harness serve` over the session stack for one test module, stopped after it."""
    service = ServedHarness(directory, stack.run_dir)
    service.start()
    try:
        yield service
    finally:
        service.stop()
