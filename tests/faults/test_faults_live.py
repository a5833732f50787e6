"""Every fault kind live on the local stack: applied, read back, healed, proven gone, with the
symptom a client sees measured independently of the driver (before, during, after)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from harness.config import Target
from harness.faults import driver_for
from harness.faults.journal import Journal
from harness.faults.lifecycle import FaultRunner
from harness.faults.toxic import ToxicDriver
from harness.stack.process import process_state
from harness.stack.stack import LocalStack
from tests.faults.live import (
    consumer_info,
    decide_round,
    fault,
    fault_context,
    median_rtt,
    nats_info,
    poll,
    router_base,
    router_faults,
    router_metric,
    router_ready,
    tcp_connect,
    toxiproxy_state,
)

pytestmark = [pytest.mark.live, pytest.mark.anyio]

PROXY = "router_nats"


def listen(target: Target) -> str:
    address = target.proxies[PROXY].listen
    assert address, "the local target names the proxy's listen address"
    return address


def nats_address(target: Target) -> str:
    return target.nats_url.removeprefix("nats://")


async def test_latency_toxic_measured_through_the_proxy(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.json")
    spec = fault(
        kind="toxic",
        proxy=PROXY,
        type="latency",
        stream="downstream",
        attributes={"latency": 300},
        duration="10s",
    )
    before = median_rtt(listen(target))
    assert before < 0.15, f"PING RTT through the proxy before the fault: {before:.3f}s"

    async with fault_context(target, clean_stack) as ctx:
        runner = FaultRunner(ctx, journal, timeout=5)
        driver = driver_for(spec, ctx, "lat")
        evidence = await runner.inject(driver)
        try:
            assert evidence["toxic"]["type"] == "latency"
            assert evidence["toxic"]["attributes"]["latency"] == 300
            assert toxiproxy_state(target.toxiproxy_url)[PROXY]["toxics"] == ["harness_lat"]
            [entry] = journal.entries()
            assert entry["key"] == "lat" and entry["kind"] == "toxic" and "applied_at" in entry
            during = await anyio.to_thread.run_sync(median_rtt, listen(target))
        finally:
            outcome = await runner.heal(driver)

    assert during >= 0.28, f"PING RTT with a 300 ms latency toxic: {during:.3f}s"
    assert outcome.healed and outcome.method == "remove", outcome
    assert outcome.errors == []
    assert toxiproxy_state(target.toxiproxy_url)[PROXY] == {"enabled": True, "toxics": []}
    assert journal.entries() == []
    after = median_rtt(listen(target))
    assert after < 0.15, f"PING RTT after heal: {after:.3f}s"


async def test_proxy_down_refuses_connections_until_healed(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.json")
    assert nats_info(listen(target)) is not None, "NATS answers through the proxy before"
    async with fault_context(target, clean_stack) as ctx:
        runner = FaultRunner(ctx, journal, timeout=5)
        driver = driver_for(fault(kind="proxy_down", proxy=PROXY, duration="10s"), ctx, "down")
        try:
            evidence = await runner.inject(driver)
            assert evidence["connect_refused"] is True
            assert evidence["proxy"]["enabled"] is False
            assert tcp_connect(listen(target)) == "refused"
            assert toxiproxy_state(target.toxiproxy_url)[PROXY]["enabled"] is False
            # The router, which reaches NATS only through this proxy, loses its connection.
            await poll(lambda: not router_ready(target), 10, "router /readyz 503 while down")
            assert [e["key"] for e in journal.entries()] == ["down"]
        finally:
            outcome = await runner.heal(driver)
    assert outcome.healed and outcome.method == "remove", outcome
    assert toxiproxy_state(target.toxiproxy_url)[PROXY]["enabled"] is True
    assert tcp_connect(listen(target)) == "accepted"
    info = nats_info(listen(target))
    assert info is not None and "server_id" in info, "NATS's INFO through the proxy after heal"
    await poll(lambda: router_ready(target), 20, "router reconnected after heal")
    assert journal.entries() == []


async def test_flap_toggles_the_proxy_on_its_period(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.json")
    spec = fault(kind="flap", proxy=PROXY, period="1s", down_fraction=0.5, duration="4s")
    samples: list[tuple[float, bool, str]] = []
    async with fault_context(target, clean_stack) as ctx:
        runner = FaultRunner(ctx, journal, timeout=5)
        driver = driver_for(spec, ctx, "flap")
        try:
            evidence = await runner.inject(driver)
            assert evidence["connect_refused"] is True and evidence["period_s"] == 1.0
            started = time.monotonic()
            async with anyio.create_task_group() as tg:

                async def sample() -> None:
                    while True:
                        enabled = await anyio.to_thread.run_sync(
                            lambda: toxiproxy_state(target.toxiproxy_url)[PROXY]["enabled"]
                        )
                        connect = await anyio.to_thread.run_sync(tcp_connect, listen(target), 0.5)
                        samples.append((time.monotonic() - started, enabled, connect))
                        await anyio.sleep(0.05)

                tg.start_soon(sample)
                await driver.hold(4.0)
                tg.cancel_scope.cancel()
            held = time.monotonic() - started
        finally:
            outcome = await runner.heal(driver)

    assert 3.9 <= held < 5.0, held
    states = [enabled for _, enabled, _ in samples]
    transitions = sum(1 for a, b in zip(states, states[1:], strict=False) if a != b)
    # 4 s at a 1 s period: down/up/down/up/... = 7 changes; a stuck flap shows 0, one that
    # only comes back up shows 1. (≥ 3 leaves room for a loaded machine's slow sampling.)
    assert transitions >= 3, f"{transitions} toggles seen: {samples}"
    assert False in states and True in states
    connects = {c for _, _, c in samples}
    assert {"refused", "accepted"} <= connects, connects
    assert driver.state["cycles"] >= 3, driver.state
    assert outcome.healed and outcome.method == "remove", outcome
    assert toxiproxy_state(target.toxiproxy_url)[PROXY]["enabled"] is True
    assert tcp_connect(listen(target)) == "accepted"
    assert journal.entries() == []


def ack_timeouts(target: Target) -> float:
    return router_metric(target, "router_nats_ack_failures_total", reason="timeout")


async def test_router_hook_ack_timeouts_move_the_router_metric_until_healed(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.json")
    spec = fault(kind="router_hook", operation="ack", mode="timeout", ms=100, duration="10s")
    before = ack_timeouts(target)
    async with fault_context(target, clean_stack) as ctx:
        runner = FaultRunner(ctx, journal, timeout=5)
        driver = driver_for(spec, ctx, "hook")
        try:
            evidence = await runner.inject(driver)
            armed = evidence["armed"][f"{router_base(target)}/faults"]
            assert armed["mode"] == "timeout" and armed["ms"] == 100
            assert router_faults(target)["ack"]["mode"] == "timeout"
            await decide_round(target.nats_url, 5)
            await poll(
                lambda: ack_timeouts(target) >= before + 5,
                10,
                "ack timeouts counted for the 5 requests",
            )
        finally:
            outcome = await runner.heal(driver)
    assert outcome.healed and outcome.method == "remove", outcome
    assert router_faults(target) == {}
    assert journal.entries() == []

    # The ACKs that failed are redelivered (ack_wait) and now confirmed; then the counter rests.
    await poll(
        lambda: _settled(target),
        20,
        "the requests whose ACK failed redelivered and ACKed",
    )
    rested = ack_timeouts(target)
    replies = await decide_round(target.nats_url, 5)
    assert set(replies.values()) == {1}, f"one reply each after heal: {replies}"
    await poll(lambda: _settled(target), 10, "the new requests ACKed")
    assert ack_timeouts(target) == rested, "ACK timeouts still counted after heal"


async def _settled(target: Target) -> bool:
    info = await consumer_info(target.nats_url)
    return info is not None and info.num_pending == 0 and info.num_ack_pending == 0


async def test_jetstream_delete_consumer_missing_while_held_and_restored(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.json")
    original = await consumer_info(target.nats_url)
    assert original is not None
    spec = fault(kind="jetstream", action="delete_consumer", duration="3s")
    seen: list[str] = []
    async with fault_context(target, clean_stack) as ctx:
        runner = FaultRunner(ctx, journal, timeout=10)
        driver = driver_for(spec, ctx, "js")
        try:
            evidence = await runner.inject(driver)
            assert evidence["consumer"] == "router-decide-consumer"
            [entry] = journal.entries()
            assert entry["state"]["config"]["durable_name"] == "router-decide-consumer"
            async with anyio.create_task_group() as tg:

                async def sample() -> None:
                    while True:
                        info = await consumer_info(target.nats_url)
                        if info is None:
                            seen.append("missing")
                        elif str(info.created) == str(original.created):
                            seen.append("original")
                        else:
                            seen.append("recreated")
                        await anyio.sleep(0.1)

                tg.start_soon(sample)
                await driver.hold(3.0)
                tg.cancel_scope.cancel()
        finally:
            outcome = await runner.heal(driver)

    assert "original" not in seen, seen
    assert seen.count("missing") >= len(seen) // 2, f"consumer mostly missing while held: {seen}"
    assert outcome.healed, outcome
    after = await consumer_info(target.nats_url)
    assert after is not None, "consumer present after heal"
    for key in ("durable_name", "ack_policy", "max_deliver", "ack_wait", "filter_subject"):
        assert getattr(after.config, key) == getattr(original.config, key), key
    assert journal.entries() == []
    # And the router consumes from it again.
    await poll(lambda: router_ready(target), 20, "router ready")
    replies = await decide_round(target.nats_url, 3, timeout=30)
    assert len(replies) == 3


def _metrics_answer(target: Target, timeout: float = 1.0) -> str:
    try:
        httpx.get(target.router_metrics_urls[0], timeout=timeout)
    except httpx.ConnectError:
        return "refused"
    except httpx.TimeoutException:
        return "timeout"
    return "answered"


@pytest.mark.parametrize(
    ("component", "action"),
    [("nats", "pause"), ("nats", "kill"), ("router", "pause"), ("router", "kill")],
)
async def test_process_fault_then_running_and_ready(
    clean_stack: LocalStack, target: Target, tmp_path: Path, component: str, action: str
) -> None:
    journal = Journal(tmp_path / "journal.json")
    pid = clean_stack.record(component).pid
    spec = fault(kind="process", component=component, action=action, duration="10s")
    async with fault_context(target, clean_stack) as ctx:
        runner = FaultRunner(ctx, journal, timeout=30)
        driver = driver_for(spec, ctx, f"proc-{component}-{action}")
        try:
            evidence = await runner.inject(driver)
            assert evidence["pid"] == pid
            assert journal.entries()[0]["state"]["pid"] == pid
            symptom = await anyio.to_thread.run_sync(_symptom, target, component, pid)
        finally:
            outcome = await runner.heal(driver)

    expected = {
        ("nats", "pause"): {"proc": "T", "client": "no INFO"},
        ("nats", "kill"): {"proc": None, "client": "refused"},
        ("router", "pause"): {"proc": "T", "client": "timeout"},
        ("router", "kill"): {"proc": None, "client": "refused"},
    }[(component, action)]
    assert symptom == expected, symptom
    assert outcome.healed and outcome.method == "remove", outcome
    assert journal.entries() == []

    record = clean_stack.record(component)
    assert record.alive() and process_state(record.pid) in ("R", "S", "D"), record
    assert (record.pid == pid) == (action == "pause"), "pause continues; kill restarts"
    if component == "nats":
        info = nats_info(nats_address(target))
        assert info is not None and info["jetstream"] is True
    else:
        assert _metrics_answer(target, 5) == "answered"
    await poll(lambda: router_ready(target), 30, "router ready after heal")
    await poll(lambda: consumer_info(target.nats_url), 10, "consumer present after heal")


def _symptom(target: Target, component: str, pid: int) -> dict[str, Any]:
    proc = process_state(pid)
    if component == "nats":
        address = nats_address(target)
        if tcp_connect(address, 1.0) == "refused":
            client = "refused"
        else:
            client = "no INFO" if nats_info(address, 1.0) is None else "INFO"
    else:
        client = _metrics_answer(target)
    return {"proc": proc if proc in ("T", None) else f"running ({proc})", "client": client}


class HangingRemove(ToxicDriver):
    """The toxic driver with only its removal call replaced by one that never returns."""

    removal_started = False

    async def remove(self) -> None:
        HangingRemove.removal_started = True
        await anyio.sleep_forever()


async def test_hanging_removal_is_healed_by_the_fallback(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.json")
    spec = fault(
        kind="toxic", proxy=PROXY, type="latency", attributes={"latency": 500}, duration="1m"
    )
    async with fault_context(target, clean_stack) as ctx:
        runner = FaultRunner(ctx, journal, timeout=1)
        driver = HangingRemove(spec, ctx, "hang")
        await runner.inject(driver)
        assert toxiproxy_state(target.toxiproxy_url)[PROXY]["toxics"] == ["harness_hang"]
        started = time.monotonic()
        outcome = await runner.heal(driver)
        took = time.monotonic() - started
    assert HangingRemove.removal_started
    assert outcome.healed and outcome.method == "fallback", outcome
    assert any("remove: no answer within 1s" in e for e in outcome.errors), outcome.errors
    assert took < 4, f"heal took {took:.1f}s with a 1 s timeout"
    assert toxiproxy_state(target.toxiproxy_url)[PROXY] == {"enabled": True, "toxics": []}
    assert journal.entries() == []


async def test_heal_is_not_cancelled_half_way(
    clean_stack: LocalStack, target: Target, tmp_path: Path
) -> None:
    """A cancel arriving while heal runs (Ctrl-C in the orchestrator) does not stop it."""
    journal = Journal(tmp_path / "journal.json")
    spec = fault(
        kind="toxic", proxy=PROXY, type="latency", attributes={"latency": 50}, duration="1m"
    )
    async with fault_context(target, clean_stack) as ctx:
        runner = FaultRunner(ctx, journal, timeout=2)
        driver = driver_for(spec, ctx, "shield")
        await runner.inject(driver)
        outcomes = []
        with anyio.CancelScope() as scope:
            scope.cancel()  # already cancelled when heal starts
            outcomes.append(await runner.heal(driver))
    assert outcomes and outcomes[0].healed, outcomes
    assert toxiproxy_state(target.toxiproxy_url)[PROXY]["toxics"] == []
    assert journal.entries() == []
