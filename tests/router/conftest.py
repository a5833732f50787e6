"""Fixtures for live router tests: `python -m router` subprocesses and /metrics helpers.

The restartable `nats_server` fixture is the shared one in tests/conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.stack.ports import free_port
from harness.stack.process import ProcessRecord, start_process, stop_process, tail

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0  # generous: the suite shares a loaded 2-core machine


def wait_for(
    condition: Callable[[], Any], timeout: float = DEADLINE, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll `condition` until it returns a truthy value; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what or condition} (last={last!r})"
    )


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


@dataclass
class RouterProcess:
    """A running `python -m router`; helpers read its /metrics and drive its /faults hook."""

    metrics_port: int
    log: Path
    args: list[str]
    popen: subprocess.Popen[bytes] | None = None
    record: ProcessRecord | None = None
    subject: str = "beamline.router.v1.decide"
    extra: dict[str, str] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples named `name` whose labels include `labels` (0 when absent)."""
        return sum(
            v
            for n, lbls, v in samples(scrape(self.metrics_port))
            if n == name and all(lbls.get(k) == want for k, want in labels.items())
        )

    def wait_value(
        self,
        name: str,
        predicate: Callable[[float], bool],
        timeout: float = DEADLINE,
        **labels: str,
    ) -> float:
        """Poll until the summed value satisfies `predicate`; returns that value."""
        seen: list[float] = []

        def check() -> bool:
            seen.append(self.value(name, **labels))
            return predicate(seen[-1])

        wait_for(check, timeout, interval=0.1, what=f"{name}{labels} (seen {seen[-3:]})")
        return seen[-1]

    def connection_state(self) -> str | None:
        for n, lbls, _ in samples(scrape(self.metrics_port)):
            if n == "router_nats_connection_status":
                return lbls["state"]
        return None

    def http(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        status, _, answer = self.request(method, path, data)
        return status, answer

    def request(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """(status, response headers, JSON-or-text body) of one raw HTTP request."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.metrics_port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, dict(resp.headers), _body(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), _body(exc.read())

    def decide(
        self, request: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """POST /decide with a raw DecideRequest body."""
        return self.request("POST", "/decide", request, headers)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        if self.record is not None:
            stop_process(self.record, popen=self.popen, grace=8.0)
            self.record = None


def _body(raw: bytes) -> Any:
    """JSON when it is JSON (the router's own answers), else the text (aiohttp's 404 page)."""
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def _serving(router: RouterProcess) -> bool:
    if not router.alive():
        raise AssertionError(f"router exited:\n{tail(router.log, 40)}")
    try:
        scrape(router.metrics_port)
    except (urllib.error.URLError, ConnectionError, OSError):
        return False
    return True


@pytest.fixture
def start_router(tmp_path: Path) -> Iterator[Callable[..., RouterProcess]]:
    """Factory: start a router subprocess with fast, test-sized settings plus `extra` flags."""
    started: list[RouterProcess] = []

    def start(nats_url: str, *extra: str, wait_connected: bool = True) -> RouterProcess:
        port = free_port()
        args = [
            sys.executable,
            "-m",
            "router",
            "--nats-url",
            nats_url,
            "--metrics-port",
            str(port),
            "--ack-wait",
            "2",
            "--ack-timeout",
            "1",
            "--connect-timeout",
            "1",
            "--ping-interval",
            "1",
            "--max-outstanding-pings",
            "2",
            "--reconnect-delay-ms",
            "100",
            "--max-reconnect-delay-ms",
            "500",
            "--monitor-interval",
            "0.5",
            "--log-level",
            "debug",
            *extra,
        ]
        log = tmp_path / f"router-{port}.log"
        router = RouterProcess(port, log, args)
        router.popen, router.record = start_process("router", args, log, cwd=REPO_ROOT)
        started.append(router)
        wait_for(lambda: _serving(router), what="router /metrics")
        if wait_connected:
            wait_for(
                lambda: router.value("router_nats_subscribe_total") >= 1,
                what="router subscribed to its consumer",
            )
        return router

    yield start
    for router in started:
        router.stop()
