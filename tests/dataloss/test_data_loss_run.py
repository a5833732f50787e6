"""The data-loss outcome through the whole run path on the fakes of `harness.testing`: every
scenario gets the data_loss check by default; a clean run passes it with lost 0; a stream that
lost acknowledged messages fails the scenario, silently when no contract alert fired before
the final drain, noticed when one did; the outcome is typed in the scenario's evidence."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from harness.config import Profile, Target
from harness.contract import load_contract
from harness.orchestrator import Orchestrator, ScenarioRun
from harness.prometheus import Series
from harness.scenario import Scenario
from harness.testing import FakeTarget, FakeWorkload

PROXY = "router_nats"
ALERT = "RouterNatsConnectionDown"


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "targets"))
    return Target(
        name="unit",
        nats_url="nats://127.0.0.1:1",
        toxiproxy_url="http://127.0.0.1:1",
        prometheus_url="http://127.0.0.1:2",
        alertmanager_url="http://127.0.0.1:3",
        proxies={PROXY: {}},
        profile=Profile(name="unit", time_compression=1.0),
    )


def _scenario(**expect: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "id": "DL-001",
            "title": "unit: data loss on fakes",
            "faults": [
                {
                    "kind": "toxic",
                    "proxy": PROXY,
                    "type": "latency",
                    "attributes": {"latency": 100},
                    "start": "0s",
                    "duration": "300ms",
                }
            ],
            "timeouts": {"baseline": "200ms"},
            "expect": expect,
        }
    )


def _run(target: Target, fakes: FakeTarget, scenario: Scenario) -> Any:
    orchestrator = Orchestrator(
        target,
        load_contract(),
        "unit-run",
        stack=fakes.stack,
        adapters=fakes.adapters(),
        workload=lambda s, t: FakeWorkload(),
    )

    async def go() -> Any:
        async with orchestrator.session() as ctx:
            return await ScenarioRun(orchestrator, scenario, ctx).run()

    return anyio.run(go)


def test_a_clean_run_reads_the_stream_back_and_loses_nothing(target: Target) -> None:
    fakes = FakeTarget([PROXY])
    result = _run(target, fakes, _scenario())
    assert result.verdict == "passed", result.reason
    check = next(c for c in result.checks if c.kind == "data_loss")
    assert check.status == "pass" and "10 of 10 acknowledged read back" in check.summary
    assert fakes.streams.reads, "the stream was read back"
    loss = result.data_loss
    assert loss is not None and loss.judged and loss.lost == 0 and not loss.silent
    assert loss.durability[0].sync_interval_s == 120.0
    doc = result.model_dump(mode="json")["data_loss"]
    assert doc["lost"] == 0 and doc["silent"] is False


def test_lost_acknowledged_messages_with_no_alert_are_silent_data_loss(target: Target) -> None:
    fakes = FakeTarget([PROXY])
    fakes.streams.lost = {9, 10}
    result = _run(target, fakes, _scenario())
    assert result.verdict == "failed"
    assert "2 of 10 acknowledged message(s) missing" in result.reason
    assert "no contract alert fired" in result.reason
    loss = result.data_loss
    assert loss is not None and loss.silent and loss.lost == 2
    assert [str(r) for r in loss.lost_ranges] == ["9-10"]


def test_loss_is_noticed_when_a_contract_alert_fired_first(target: Target) -> None:
    fakes = FakeTarget([PROXY])
    fakes.streams.lost = {3}
    now = time.time()
    fakes.prometheus.stored['ALERTS{alertstate="firing"}'] = [
        Series({"alertname": ALERT}, [(now + i / 10, 1.0) for i in range(600)])
    ]
    result = _run(target, fakes, _scenario())
    loss = result.data_loss
    assert loss is not None and loss.lost == 1 and not loss.silent
    assert [a.alert for a in loss.alerts_fired] == [ALERT]


def test_a_scenario_may_allow_loss_or_opt_out(target: Target) -> None:
    fakes = FakeTarget([PROXY])
    fakes.streams.lost = {3}
    allowed = _run(target, fakes, _scenario(data_loss={"lost": 1}))
    assert allowed.verdict == "passed", allowed.reason
    assert allowed.data_loss is not None and allowed.data_loss.lost == 1
    off = _run(target, FakeTarget([PROXY]), _scenario(data_loss=None))
    assert off.data_loss is None and not [c for c in off.checks if c.kind == "data_loss"]


def test_an_unreadable_stream_is_an_error_not_a_pass(target: Target) -> None:
    fakes = FakeTarget([PROXY])
    fakes.streams.error = "nats: no servers available for connection"
    result = _run(target, fakes, _scenario())
    assert result.verdict == "error"
    assert result.data_loss is not None and not result.data_loss.judged
