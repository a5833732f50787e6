"""The scrape check live: a real Prometheus scraping a real target (the harness's webhook
receiver) and itself. A scrape job pointed at a wrong port, or dropped from the configuration,
fails the check on that job while the unbroken job beside it passes; a Prometheus that is down is
`error`, naming it, never a pass."""

from __future__ import annotations

import time
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml

from harness.checks.scrape import ScrapeCheck
from harness.config import PROFILES
from harness.evidence.record import CheckResult
from harness.prometheus import PrometheusAPI
from harness.stack.components.prometheus import Prometheus
from harness.stack.components.webhook import Webhook
from harness.stack.ports import free_port
from harness.stack.stack import LocalStack

pytestmark = pytest.mark.live

BROKEN_JOB = "harness-webhook"
CONTROL_JOB = "prometheus"
SCRAPES = 5.0  # seconds of scrapes (every second) each test judges


@dataclass
class Window:
    """What a scrape check sees of a run: where its observations start (duck-types the
    orchestrator's RunView: `started()`, the contract and the target's profile)."""

    start: float
    contract: None = None
    target: Any = field(default_factory=lambda: type("T", (), {"profile": PROFILES["local"]}))

    def started(self) -> float:
        return self.start


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("scrape") / "run", [Webhook(), Prometheus()])
    anyio.run(stack.up)
    try:
        yield stack
    finally:
        stack.down()


def config_path(stack: LocalStack) -> Path:
    return stack.ctx.directory("prometheus") / "prometheus.yml"


def scraped(stack: LocalStack) -> set[tuple[str, str]]:
    """(job, address) of every target Prometheus is scraping now."""
    response = httpx.get(f"{stack.ctx.url('prometheus')}/api/v1/targets", timeout=10)
    active = response.json()["data"]["activeTargets"]
    return {(t["labels"]["job"], t["labels"]["instance"]) for t in active}


def reload(stack: LocalStack, config: dict[str, Any]) -> None:
    """Load `config` and wait until Prometheus scrapes exactly its targets (its discovery
    hands a reloaded target set to the scrapers up to 5 s later)."""
    config_path(stack).write_text(yaml.safe_dump(config, sort_keys=False))
    response = httpx.post(f"{stack.ctx.url('prometheus')}/-/reload", timeout=10)
    assert response.status_code == 200, response.text
    wanted = {
        (job["job_name"], address)
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for address in static["targets"]
    }
    deadline = time.monotonic() + 15
    while scraped(stack) != wanted:
        assert time.monotonic() < deadline, f"Prometheus scrapes {scraped(stack)}, not {wanted}"
        time.sleep(0.2)


@pytest.fixture
def config(stack: LocalStack) -> Iterator[dict[str, Any]]:
    """The stack's Prometheus configuration to break; restored (and reloaded) afterwards."""
    original = yaml.safe_load(config_path(stack).read_text())
    yield deepcopy(original)
    reload(stack, original)
    time.sleep(1.5)  # the restored job scraped again before the next test's window


def judge(stack: LocalStack, start: float, *jobs: str, url: str | None = None) -> list[CheckResult]:
    prometheus = PrometheusAPI(url or stack.ctx.url("prometheus"))
    checks = [ScrapeCheck(job, prometheus) for job in jobs]

    async def verdicts() -> list[CheckResult]:
        return [await check.verdict(Window(start)) for check in checks]  # type: ignore[arg-type]

    return anyio.run(verdicts)


def job_of(config: dict[str, Any], name: str) -> dict[str, Any]:
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == name]
    return job


def test_unbroken_jobs_pass(stack: LocalStack) -> None:
    start = time.time()
    time.sleep(SCRAPES)
    broken_job, control = judge(stack, start, BROKEN_JOB, CONTROL_JOB)
    assert broken_job.status == "pass", broken_job.summary
    assert control.status == "pass", control.summary
    print(broken_job.summary, "|", control.summary)


def test_a_job_pointed_at_a_wrong_port_fails_beside_an_unbroken_one(
    stack: LocalStack, config: dict[str, Any]
) -> None:
    wrong = f"127.0.0.1:{free_port()}"
    job_of(config, BROKEN_JOB)["static_configs"] = [{"targets": [wrong]}]
    reload(stack, config)
    start = time.time()
    time.sleep(SCRAPES)
    broken_job, control = judge(stack, start, BROKEN_JOB, CONTROL_JOB)
    assert broken_job.status == "fail", broken_job.summary
    assert f"job {BROKEN_JOB} failed scrapes: {wrong} (" in broken_job.summary
    assert control.status == "pass", control.summary
    print(broken_job.summary, "|", control.summary)


def test_a_job_dropped_from_the_configuration_fails_beside_an_unbroken_one(
    stack: LocalStack, config: dict[str, Any]
) -> None:
    config["scrape_configs"].remove(job_of(config, BROKEN_JOB))
    start = time.time()
    time.sleep(2)  # a few good scrapes first: the job then vanishes mid-window
    reload(stack, config)
    time.sleep(8)  # longer than the check's slack (3 scrape intervals + 2 s)
    broken_job, control = judge(stack, start, BROKEN_JOB, CONTROL_JOB)
    assert broken_job.status == "fail", broken_job.summary
    webhook = stack.ctx.address("webhook")
    assert f"job {BROKEN_JOB} not scraped: {webhook} (" in broken_job.summary
    assert control.status == "pass", control.summary
    print(broken_job.summary, "|", control.summary)


def test_prometheus_down_is_an_error_naming_it(stack: LocalStack) -> None:
    url = stack.ctx.url("prometheus")
    start = time.time() - SCRAPES
    stack.stop_component("prometheus")
    try:
        began = time.monotonic()
        (checked,) = judge(stack, start, CONTROL_JOB)
        took = time.monotonic() - began
    finally:
        anyio.run(stack.start_component, "prometheus")
    assert checked.status == "error", checked.summary
    assert checked.summary.startswith(f"could not consult the target: {url}: query 'up{{job=")
    assert "Connection refused (tried 2 times in" in checked.summary
    assert took < 2.0  # one retry after a short pause, not the client's ~6 s of backoff
    print(f"{took:.2f}s: {checked.summary}")
