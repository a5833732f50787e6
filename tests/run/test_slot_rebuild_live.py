"""A slot a scenario left unhealthy is rebuilt before the next scenario on it, live.

The stack runs a router that cannot re-bind: a copy of the reference router that, once its
durable consumer is gone, stops consuming and answers /readyz with 503 `consumer_bound: false`
for good (the router from issue 20's cascade). BREAK-001 deletes its consumer, NATS-005 style;
the fault heals (the consumer is re-created) but the router stays unready, so the slot is
unfit. The run rebuilds it (same ports, empty stores) and NEXT-001, on the same slot, is judged
normally: before, it ended in `error` at preflight. NEXT-001 leaves the slot healthy: no
rebuild after it (the control).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from harness.paths import project_root
from harness.stack.component import StackOptions
from harness.stack.stack import LocalStack
from tests.run.cli import ENV, HARNESS, quick_toxic, scenarios

pytestmark = pytest.mark.live

BREAK = """\
id: BREAK-001
title: The router's consumer deleted; this router never binds again
faults:
  - kind: jetstream
    action: delete_consumer
    why: a consumer deleted on the server is an admin action
    start: 0s
    duration: 2m
workload:
  rate: 5
timeouts:
  baseline: 1s
"""


def _patch(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} in {path}"
    path.write_text(text.replace(old, new))


def unbinding_router(dest: Path) -> Path:
    """A copy of the router that never re-binds once its consumer was found missing: its
    consumer idles (the process stays up) and /readyz says 503 `consumer_bound: false` from
    then on."""
    package = dest / "router"
    shutil.copytree(
        project_root() / "router", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    _patch(
        package / "app.py",
        "self.consumer.request_resubscribe()",
        "self.conn.consumer_bound = False  # breakage: never re-binds",
    )
    _patch(
        package / "consumer.py",
        "failures = 0\n        while not self._stop.is_set():\n",
        "failures = 0\n        while not self._stop.is_set():\n"
        '            if not getattr(self.conn, "consumer_bound", True):  # breakage: idles\n'
        "                await self._until(asyncio.sleep(3600))\n"
        "                continue\n",
    )
    _patch(
        package / "http.py",
        'ready = conn.connected\n        return web.json_response(\n            {"ready": ready,',
        'bound = getattr(conn, "consumer_bound", True)\n'
        "        ready = conn.connected and bound\n"
        "        return web.json_response(\n"
        '            {"ready": ready, "consumer_bound": bound,',
    )
    return dest


@pytest.fixture
def slot(tmp_path: Path) -> Iterator[LocalStack]:
    options = StackOptions(router_source=str(unbinding_router(tmp_path / "router-src")))
    stack = LocalStack(tmp_path / "run", options=options)
    anyio.run(stack.up)
    try:
        yield stack
    finally:
        stack.down()


def test_a_slot_left_unhealthy_is_rebuilt_and_the_next_scenario_is_judged(
    slot: LocalStack, tmp_path: Path
) -> None:
    directory = scenarios(
        tmp_path / "scenarios", BREAK=BREAK, NEXT=quick_toxic("NEXT-001", delivery=True)
    )
    ports = slot.read_state().ports  # type: ignore[union-attr]
    router_pid = slot.record("router").pid
    started = time.monotonic()
    run = subprocess.run(
        [*HARNESS, "run", "BREAK-001", "NEXT-001", "--target", str(slot.target_path),
         "--scenarios", str(directory), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=150, env=ENV,
    )  # fmt: skip
    seconds = time.monotonic() - started
    output = run.stdout + run.stderr
    assert (tmp_path / "out" / "evidence.json").exists(), output
    evidence = json.loads((tmp_path / "out" / "evidence.json").read_text())
    results = {s["scenario_id"]: s for s in evidence["scenarios"]}

    # BREAK-001 left the router unready; the slot was rebuilt after it, and says why.
    after_break = results["BREAK-001"]["slot_after"]
    assert after_break["action"] == "rebuilt", after_break
    assert not after_break["healthy"]
    assert any(
        re.search(r"router\[0\]: GET \S+/readyz: HTTP 503 .*consumer_bound.: false", p)
        for p in after_break["problems"]
    ), after_break["problems"]
    assert 0 < after_break["rebuild_seconds"] < 60
    assert after_break["error"] is None

    # NEXT-001 ran on the same slot and was judged (not an `error` at preflight).
    following = results["NEXT-001"]
    assert following["target"] == results["BREAK-001"]["target"] == "local"
    preflight = next(p for p in following["phases"] if p["phase"] == "preflight")
    assert preflight["status"] == "ok", preflight
    assert following["verdict"] == "passed", (following["reason"], output)
    # The control: a healthy slot is checked and not rebuilt.
    assert following["slot_after"]["healthy"] is True
    assert following["slot_after"]["action"] == "none"

    # Rebuilt on the same ports (the run's target still holds), by fresh processes.
    assert slot.read_state().ports == ports  # type: ignore[union-attr]
    assert slot.record("router").pid != router_pid
    # The run summary says it.
    assert "slot: local rebuilt after BREAK-001" in " ".join(output.split()), output
    print(
        f"run {seconds:.1f}s; rebuild {after_break['rebuild_seconds']}s; "
        f"check {after_break['check_seconds']}s"
    )
