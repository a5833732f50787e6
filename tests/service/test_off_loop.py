"""The store never runs on the event loop: a store that notes every call made from the loop's
thread shows that the service's async code reaches it only through worker threads — at start
(crash recovery, the schedules file), while runs start, report results, are guarded, stopped,
conclude and notify, on every page and download, and at stop; and with a slow store,
`/healthz` still answers at once while a run concludes."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from harness.config import load_target
from harness.service import guards
from harness.service.app import create_app
from harness.service.store import Store
from tests.service.fakes import ADMIN, OPERATOR, FakeRunner, bearer, service_files, settings_for
from tests.service.test_api import Harness, wait_for
from tests.service.test_lifecycle import Receiver

OPS = bearer(OPERATOR)
STORE_CALLS = sorted(
    name for name, value in vars(Store).items() if callable(value) and not name.startswith("_")
)
SCHEDULES = """\
schedules:
  - name: from-file
    cron: "0 3 * * *"
    scenarios: [QUICK-001]
    target: staging-b
"""


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def wrap_store(monkeypatch: pytest.MonkeyPatch, around: Callable[[str], None]) -> None:
    """Every public Store method calls `around(name)` first."""
    for name in STORE_CALLS:
        original = getattr(Store, name)

        def wrapped(self: Store, *args: Any, _original: Any = original, _name: str = name,
                    **kwargs: Any) -> Any:  # fmt: skip
            around(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Store, name, wrapped)


def on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_no_store_call_runs_on_the_event_loop(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = service_files(base, targets=("staging-a", "staging-b"), schedules=SCHEDULES)
    failing_hook = Receiver(status=500)
    settings = settings_for(base, config, webhook_url=failing_hook.url)
    settings.data_dir.mkdir(parents=True)
    target = load_target(base / "staging-a.yaml")
    Store(settings.db_url()).add_run({
        "id": "dead-run", "status": "running", "created_at": time.time(), "started_by": "x",
        "targets": [target.model_dump(mode="json")], "scenarios": ["QUICK-001"], "request": {},
        "out_dir": str(settings.runs_dir() / "dead-run"), "reason": ""})  # fmt: skip

    async def trips(*_: Any) -> guards.Trip:
        await anyio.sleep(0.05)
        return guards.Trip("slo", time.time(), {"x": 1}, "staging-a", "alert firing")

    monkeypatch.setattr(guards, "watch", trips)  # the guard's own tests are test_guards.py
    on_loop: list[str] = []
    wrap_store(monkeypatch, lambda name: on_loop.append(name) if on_the_loop() else None)
    runner = FakeRunner()
    try:
        with TestClient(create_app(settings, run_fn=runner)) as client:
            h = Harness(client, runner)
            assert h.run("dead-run")["status"] == "interrupted"  # recovered at start
            two = {"scenarios": ["QUICK-001", "QUICK-002"], "target": "staging-a"}
            run_id = h.start(two).json()["run_id"]
            assert h.finished(run_id)["status"] == "passed"
            wait_for(lambda: h.service.store.run(run_id)["notify_error"], "the notify error")
            h.hold()
            guarded = {**two, "guards": [{"name": "slo", "promql": "vector(1)"}]}
            aborted = h.start(guarded).json()["run_id"]
            assert h.finished(aborted)["status"] == "aborted"
            held = h.start({"scenarios": ["QUICK-001"], "target": "staging-b"}).json()["run_id"]
            wait_for(lambda: h.run(held)["status"] == "running", "the held run to start")
            assert client.post("/api/stop-all", headers=OPS).json()["cancelled"] == [held]
            assert h.finished(held)["status"] == "cancelled"
            for path in ("/", f"/runs/{run_id}", "/schedules", "/api/schedules", "/api/runs",
                         f"/api/runs/{run_id}/evidence.json", "/api/audit"):  # fmt: skip
                assert client.get(path, headers=bearer(ADMIN)).status_code == 200, path
            client.portal.call(h.service.scheduler.tick, time.time())  # type: ignore[union-attr]
    finally:
        failing_hook.close()
    assert on_loop == [], f"store calls on the event loop: {sorted(set(on_loop))}"


def test_healthz_answers_at_once_while_a_run_concludes_on_a_slow_store(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_s = 0.6
    slow = {"save_result", "update_run", "run"}  # what a run's results and conclusion write
    wrap_store(monkeypatch, lambda name: time.sleep(slow_s) if name in slow else None)
    config = service_files(base, targets=("staging-a",))
    runner = FakeRunner()
    with TestClient(create_app(settings_for(base, config), run_fn=runner)) as client:
        h = Harness(client, runner)
        run_id = h.start({"scenarios": ["QUICK-001", "QUICK-002"], "target": "staging-a"}).json()[
            "run_id"
        ]
        answers: list[float] = []
        deadline = time.monotonic() + 30
        # a full collection of the test session's heap pauses every thread for 0.5 s: not the
        # service's doing, so none runs while /healthz is timed
        gc.collect()
        gc.disable()
        try:
            while run_id in h.service.manager.active:  # until concluded (read from memory)
                assert time.monotonic() < deadline, "the run did not conclude"
                started = time.monotonic()
                assert client.get("/healthz").status_code == 200
                answers.append(time.monotonic() - started)
        finally:
            gc.enable()
    row = Store(h.service.settings.db_url()).run(run_id)
    assert row is not None and row["status"] == "passed" and len(row["results"]) == 2
    assert len(answers) > 10 and max(answers) < slow_s / 2, (
        f"/healthz took up to {max(answers):.3f} s while the store took {slow_s} s a call"
    )
