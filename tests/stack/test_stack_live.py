"""The local stack live: real nats-server, Prometheus, Alertmanager and webhook receiver."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import nats
import pytest
import yaml

from harness.config import load_target
from harness.durations import parse_duration
from harness.paths import deploy_dir
from harness.stack.ports import port_is_free
from harness.stack.stack import ComponentFailed, LocalStack

pytestmark = pytest.mark.live

HARNESS = [sys.executable, "-m", "harness"]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention `text` (our run dirs are in every argv)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state not in ("Z", "X") and int(entry.name) != os.getpid():
            found.append(f"{entry.name}: {cmdline}")
    return found


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HARNESS, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


async def real_answers(target_path: Path) -> dict[str, object]:
    """Ask each component for something only the real thing answers."""
    target = load_target(target_path)
    nc = await nats.connect(target.nats_url)
    try:
        account = await nc.jetstream().account_info()
    finally:
        await nc.close()
    async with httpx.AsyncClient(timeout=5) as client:
        targets = (await client.get(f"{target.prometheus_url}/api/v1/targets")).json()
        rules = (await client.get(f"{target.prometheus_url}/api/v1/rules")).json()
        am = (await client.get(f"{target.alertmanager_url}/api/v2/status")).json()
        hook = (await client.get(f"{target.webhook_url}/healthz")).json()
    return {"account": account, "targets": targets, "rules": rules, "am": am, "hook": hook}


def test_up_status_down_through_the_cli(tmp_path: Path) -> None:
    run_dir = tmp_path / "stack"
    env = {**os.environ, "HARNESS_RUN_DIR": str(run_dir)}
    started = run(["up", "--detach", "--slots", "1"], env)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        status = run(["status", "--json"], env)
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["all_up"] is True
        names = {c["name"] for c in report["components"]}
        assert names == {"nats", "toxiproxy", "router", "webhook", "alertmanager", "prometheus"}
        pids = [c["pid"] for c in report["components"]]

        answers = anyio.run(real_answers, run_dir / "target.yaml")
        assert answers["account"].limits is not None  # JetStream answered for the account
        active = answers["targets"]["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in active}
        assert jobs == {"prometheus", "alertmanager", "router", "toxiproxy", "harness-webhook"}
        assert all(t["health"] == "up" for t in active), active
        assert answers["am"]["cluster"]["status"] == "disabled"
        assert answers["hook"]["status"] == "ok"

        # The deploy rules are loaded, time-compressed by the profile's factor.
        target = load_target(run_dir / "target.yaml")
        factor = target.profile.time_compression
        groups = answers["rules"]["data"]["groups"]
        loaded = {r["name"]: r for g in groups for r in g["rules"] if r["type"] == "alerting"}
        source = [
            r
            for f in sorted((deploy_dir() / "prometheus" / "rules").glob("*.yml"))
            for g in yaml.safe_load(f.read_text())["groups"]
            for r in g["rules"]
            if "alert" in r
        ]
        assert source, "deploy/prometheus/rules has no alert rules"
        assert {r["alert"] for r in source} == set(loaded)
        with_for = next(r for r in source if "for" in r)
        assert loaded[with_for["alert"]]["duration"] == pytest.approx(
            parse_duration(with_for["for"]) / factor, abs=1
        )
    finally:
        stopped = run(["down"], env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not processes_mentioning(str(run_dir))
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    for url in (
        target.prometheus_url,
        target.alertmanager_url,
        target.webhook_url,
        target.nats_url,
    ):
        assert port_is_free(int(url.rsplit(":", 1)[1])), f"{url} still bound after down"
    assert run(["status"], env).returncode == 3  # no stack: could not evaluate


def test_foreground_up_tears_down_on_ctrl_c(tmp_path: Path) -> None:
    run_dir = tmp_path / "stack"
    env = {**os.environ, "HARNESS_RUN_DIR": str(run_dir)}
    proc = subprocess.Popen(
        [*HARNESS, "up", "--slots", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (run_dir / "target.yaml").exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "stack not ready within 60 s"
            time.sleep(0.2)
        assert processes_mentioning(str(run_dir))
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            run(["down"], env)  # the stack's processes outlive a killed `up`
    assert proc.returncode == 0, output
    assert "stack stopped" in output
    assert not processes_mentioning(str(run_dir))


def test_second_up_in_same_run_dir_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_RUN_DIR": str(tmp_path / "stack")}
    assert run(["up", "--detach", "--slots", "1"], env).returncode == 0
    try:
        again = run(["up", "--detach", "--slots", "1"], env)
        assert again.returncode == 3  # could not act: a stack is there
        assert "already running" in again.stderr
    finally:
        assert run(["down"], env).returncode == 0


def test_component_that_fails_to_start_is_named_and_nothing_is_left(tmp_path: Path) -> None:
    broken = tmp_path / "deploy"
    shutil.copytree(deploy_dir(), broken)
    (broken / "prometheus" / "rules" / "zz-broken.yml").write_text(
        "groups:\n  - name: broken\n    rules:\n"
        "      - alert: Broken\n        expr: sum(rate(x[5m]\n"
    )
    run_dir = tmp_path / "stack"
    stack = LocalStack(run_dir, deploy_dir=broken)
    with pytest.raises(ComponentFailed) as info:
        anyio.run(stack.up)
    assert info.value.component == "prometheus"
    message = str(info.value)
    assert "component prometheus failed to start" in message
    assert "zz-broken.yml" in message  # the tail of Prometheus's own log says why
    assert not processes_mentioning(str(run_dir))
    assert not (run_dir / "stack.json").exists()


def test_reset_alerting_leaves_no_alert_state_behind(clean_stack: LocalStack) -> None:
    """Between scenarios: an alert Alertmanager holds and Prometheus's rule state are gone,
    scraping goes on, and every rule is evaluated again from its new group."""
    target = load_target(clean_stack.target_path)

    async def go() -> tuple[list, list, dict, dict, float]:
        async with httpx.AsyncClient(timeout=5) as client:
            posted = [{"labels": {"alertname": "LeftOver", "severity": "critical"}}]
            (await client.post(f"{target.alertmanager_url}/api/v2/alerts", json=posted))
            before = (await client.get(f"{target.alertmanager_url}/api/v2/alerts")).json()
            rules_before = (await client.get(f"{target.prometheus_url}/api/v1/rules")).json()
            took = await clean_stack.reset_alerting()
            after = (await client.get(f"{target.alertmanager_url}/api/v2/alerts")).json()
            await anyio.sleep(2 * target.profile.evaluation_interval + 0.5)
            rules_after = (await client.get(f"{target.prometheus_url}/api/v1/rules")).json()
        return before, after, rules_before, rules_after, took

    before, after, rules_before, rules_after, took = anyio.run(go)
    assert [a["labels"]["alertname"] for a in before] == ["LeftOver"]
    assert after == [], "Alertmanager kept an alert across the reset"
    files_before = {g["file"] for g in rules_before["data"]["groups"]}
    groups = rules_after["data"]["groups"]
    assert files_before.isdisjoint({g["file"] for g in groups}), "same rule groups: state kept"
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == sum(len(g["rules"]) for g in rules_before["data"]["groups"])
    assert all(r["health"] == "ok" and r["state"] == "inactive" for r in rules if "state" in r)
    assert took < 5, took
