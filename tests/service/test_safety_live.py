"""The service's safety promises live, as a real `harness serve` process against the session's
local stack (real nats-server, Prometheus, Alertmanager, the embedded Toxiproxy server):

- SIGTERM mid-fault with a slow client holding a request open: the fault is healed within 2 s
  (read back from Toxiproxy) and the process is gone within the deployment's grace period;
- the safety lever engaged stops the run, survives a restart, refuses new runs (423) and the
  scheduler's fires until an admin releases it;
- a token's policy refuses a run it does not allow (403 naming the rule), nothing injected;
- an admin reloads the tokens file: a bad one changes nothing, a good one changes a policy
  in the running process.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.config import Target
from harness.paths import project_root
from harness.stack.stack import LocalStack
from tests.run.cli import harness, squash
from tests.service.fakes import ADMIN, OPERATOR, READER
from tests.service.live import (
    ServedHarness,
    assert_target_clean,
    harness_toxics,
    wait_until,
)

pytestmark = pytest.mark.live

TEAM = "team-a-secret-0001"
POLICY_TOKENS = f"""\
tokens:
  - name: team-a
    secret: {TEAM}
    role: operator
    policy: {{targets: [staging-only]}}
"""


def grace_period() -> float:
    """The Kubernetes Deployment's terminationGracePeriodSeconds (systemd's TimeoutStopSec is
    the same 60 s)."""
    path = project_root() / "deploy" / "k8s" / "base" / "harness-deployment.yaml"
    spec = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]
    return float(spec["terminationGracePeriodSeconds"])


@pytest.fixture(scope="module")
def served(
    local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedHarness]:
    base = tmp_path_factory.mktemp("safety")
    (base / "tokens.yaml").write_text(POLICY_TOKENS)
    service = ServedHarness(base, local_stack.run_dir,
                            HARNESS_SERVE_TOKENS_FILE=str(base / "tokens.yaml"))  # fmt: skip
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def clean(clean_stack: LocalStack, target: Target, served: ServedHarness) -> Iterator[Target]:
    if served.proc is None or served.proc.poll() is not None:
        served.start()
    yield target
    alive = served.proc is not None and served.proc.poll() is None
    if alive and served.get("/api/lever").json()["engaged"]:
        served.post("/api/lever/release", {"reason": "test cleanup"}, ADMIN)


def wait_for_toxic(target: Target) -> str:
    return wait_until(lambda: harness_toxics(target), "the run's toxic", 40)[0]


def slow_request(port: int, token: str | None) -> socket.socket:
    """A POST that declares 1000 bytes of body and sends 6, then holds the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    sock.sendall(
        (f"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json"
         "\r\nContent-Length: 1000\r\n\r\n{\"scen").encode()
    )  # fmt: skip
    return sock


def test_sigterm_heals_first_although_a_slow_client_holds_a_request_open(
    served: ServedHarness, clean: Target
) -> None:
    served.start_run("LONG-001")
    wait_for_toxic(clean)
    slow = [slow_request(served.port, OPERATOR), slow_request(served.port, None)]
    try:
        time.sleep(0.3)  # both requests are in: the server holds them
        assert served.proc is not None
        signalled = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not harness_toxics(clean), "the heal", 2.0, interval=0.05)
        healed = time.monotonic() - signalled
        served.proc.wait(grace_period())
        gone = time.monotonic() - signalled
    finally:
        for sock in slow:
            sock.close()
    assert healed < 2.0, f"healed {healed:.2f}s after SIGTERM"
    assert gone < grace_period(), f"exited {gone:.1f}s after SIGTERM"
    assert_target_clean(clean)
    log = served.log()
    assert "shutdown_heal_first" in log and "shutdown_healed" in log
    served.start()  # the restart finds the run interrupted and nothing left to heal
    (run,) = served.get("/api/runs", scenario="LONG-001").json()["runs"][:1]
    assert run["status"] in ("interrupted", "cancelled"), run
    assert_target_clean(clean)


def test_the_lever_stops_survives_a_restart_and_refuses_until_released(
    served: ServedHarness, clean: Target
) -> None:
    run_id = served.start_run("LONG-001")
    wait_for_toxic(clean)
    engaged = harness("lever", "engage", "--reason", "live test freeze", "--url", served.url,
                      env={"HARNESS_TOKEN": ADMIN})  # fmt: skip
    out = squash(engaged.stdout + engaged.stderr)
    assert engaged.returncode == 0, out
    assert f"safety lever engaged; cancelled: {run_id}" in out and "local: clean" in out
    assert_target_clean(clean)  # read back right after the answer
    assert served.finished(run_id, timeout=60)["status"] == "cancelled"
    served.stop()
    served.start()
    refused = served.post("/api/runs", {"scenarios": ["PASS-001"]})
    assert refused.status_code == 423, refused.text
    assert "live test freeze" in refused.json()["detail"]["message"]
    assert "SAFETY LEVER ENGAGED" in served.get("/", READER).text
    assert served.post("/api/lever/release", {"reason": "done"}, OPERATOR).status_code == 403
    released = harness("lever", "release", "--reason", "done", "--url", served.url,
                       env={"HARNESS_TOKEN": ADMIN})  # fmt: skip
    assert released.returncode == 0, released.stdout + released.stderr
    accepted = served.post("/api/runs", {"scenarios": ["PASS-001"]})
    assert accepted.status_code == 202, accepted.text
    assert served.finished(accepted.json()["run_id"])["status"] == "passed"
    assert_target_clean(clean)


def test_the_scheduler_does_not_fire_while_the_lever_is_engaged(
    served: ServedHarness, clean: Target
) -> None:
    assert served.post("/api/lever/engage", {"reason": "no game-days"}, ADMIN).status_code == 200
    schedule = {"name": "every-minute-held", "cron": "* * * * *", "scenarios": ["PASS-001"]}
    assert served.post("/api/schedules", schedule).status_code == 201
    try:
        events = wait_until(
            lambda: served.get("/api/schedules/every-minute-held").json()["events"],
            "the schedule's first fire time",
            75,
            interval=0.5,
        )
        assert [e["outcome"] for e in events] == ["skipped"], events
        assert "safety lever is engaged" in events[0]["detail"] and events[0]["run_id"] is None
        assert served.get("/api/runs", schedule="every-minute-held").json()["total"] == 0
        entries = served.get("/api/audit", ADMIN).json()
        assert any(e["token"] == "scheduler" and e["action"] == "schedule.skipped"
                   for e in entries)  # fmt: skip
    finally:
        assert served.client_delete("/api/schedules/every-minute-held").status_code == 204
    assert harness_toxics(clean) == []


def test_a_policy_refusal_names_the_rule_and_injects_nothing(
    served: ServedHarness, clean: Target
) -> None:
    before = served.get("/api/runs").json()["total"]
    answer = served.post("/api/runs", {"scenarios": ["LONG-001"]}, TEAM)
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"]["rule"] == "targets"
    assert served.get("/api/runs").json()["total"] == before
    assert harness_toxics(clean) == []
    denied = [e for e in served.get("/api/audit", ADMIN).json() if e["outcome"] == "denied"]
    assert denied and denied[0]["token"] == "team-a" and denied[0]["client"].startswith("127.0.0.1")


def test_a_tokens_reload_changes_a_policy_without_a_restart(
    served: ServedHarness, clean: Target
) -> None:
    """An admin edits the tokens file and reloads it: a bad file is refused naming its line
    and field and nothing changes; a good one lets team-a run on the target its old policy
    refused, in the same process."""
    assert served.proc is not None
    pid, tokens = served.proc.pid, served.base / "tokens.yaml"
    run = {"scenarios": ["PASS-001"]}
    assert served.post("/api/runs", run, TEAM).json()["detail"]["rule"] == "targets"
    try:
        tokens.write_text(POLICY_TOKENS.replace("role: operator", "role: boss"))
        bad = served.post("/api/tokens/reload", None, ADMIN)
        assert bad.status_code == 422, bad.text
        assert [(p["line"], p["field"]) for p in bad.json()["detail"]["problems"]] == [
            (4, "tokens[0].role")
        ]
        assert served.post("/api/runs", run, TEAM).status_code == 403  # nothing changed
        tokens.write_text(POLICY_TOKENS.replace("[staging-only]", f"[staging-only, {clean.name}]"))
        good = served.post("/api/tokens/reload", None, ADMIN)
        assert good.status_code == 200 and good.json()["changed"] == ["team-a (policy)"]
        started = served.post("/api/runs", run, TEAM)
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        wait_until(lambda: served.run(run_id)["status"] == "running", "the run to start", 30)
        assert served.post(f"/api/runs/{run_id}/cancel", None, TEAM).status_code == 202
        assert served.finished(run_id)["status"] == "cancelled"
        assert_target_clean(clean)
        assert served.proc.pid == pid and served.proc.poll() is None  # no restart
        actions = [(e["action"], e["outcome"]) for e in served.get("/api/audit", ADMIN).json()]
        assert ("tokens.reload", "ok") in actions and ("tokens.reload", "denied") in actions
    finally:
        tokens.write_text(POLICY_TOKENS)
        assert served.post("/api/tokens/reload", None, ADMIN).status_code == 200


def test_a_second_service_on_the_data_dir_refuses_to_start(
    served: ServedHarness, clean: Target, tmp_path: Path
) -> None:
    second = ServedHarness(served.base, clean_stack_dir(served))
    second.data_dir = served.data_dir
    with pytest.raises(AssertionError, match="is in use by another harness serve"):
        second.start()


def clean_stack_dir(served: ServedHarness) -> Path:
    return Path(served.config.read_text().split("run_dir: ", 1)[1].splitlines()[0])
