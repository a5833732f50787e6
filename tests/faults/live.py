"""Independent observers of the local stack for live fault tests, and the guard that keeps it clean.

Everything here looks at the stack the way a client would (raw TCP, the NATS protocol, HTTP,
/proc), never through the fault drivers under test, so a test can catch a driver that lies.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import nats
from nats.js.errors import NotFoundError
from prometheus_client.parser import text_string_to_metric_families
from pydantic import TypeAdapter

from harness.config import Target
from harness.faults import Fault
from harness.faults.base import FaultContext
from harness.faults.journal import Journal
from harness.stack.process import process_state
from harness.stack.stack import LocalStack
from harness.toxiproxy_client import ToxiproxyClient

SUBJECT = "beamline.router.v1.decide"
STREAM = "router-stream"
CONSUMER = "router-decide-consumer"
_FAULT = TypeAdapter(Fault)


def fault(**fields: Any) -> Any:
    """A scenario fault from its YAML shape (durations as strings), validated like a file."""
    return _FAULT.validate_python(fields)


def split(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


# --- raw TCP / NATS protocol ---------------------------------------------------------------


def tcp_connect(hostport: str, timeout: float = 2.0) -> str:
    """`accepted`, `refused` or `timeout` for one TCP connect."""
    try:
        with socket.create_connection(split(hostport), timeout=timeout):
            return "accepted"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"


def nats_info(hostport: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """NATS's INFO line parsed, or None when the connection gives none within `timeout`."""
    try:
        with socket.create_connection(split(hostport), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    return None
                data += chunk
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return None
    return json.loads(line[5:])


def nats_ping_rtt(hostport: str, timeout: float = 5.0) -> float:
    """Seconds from sending PING to reading PONG on a fresh NATS connection to `hostport`."""
    with socket.create_connection(split(hostport), timeout=timeout) as sock:
        sock.settimeout(timeout)
        buf = b""
        while b"\r\n" not in buf:
            chunk = sock.recv(4096)
            assert chunk, f"{hostport} closed before INFO"
            buf += chunk
        assert buf.startswith(b"INFO "), buf[:80]
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
        buf = b""
        started = time.perf_counter()
        sock.sendall(b"PING\r\n")
        while b"PONG\r\n" not in buf:
            chunk = sock.recv(4096)
            assert chunk, f"{hostport} closed before PONG: {buf!r}"
            assert b"-ERR" not in chunk, chunk
            buf += chunk
        return time.perf_counter() - started


def median_rtt(hostport: str, n: int = 3) -> float:
    values = sorted(nats_ping_rtt(hostport) for _ in range(n))
    return values[len(values) // 2]


# --- HTTP ------------------------------------------------------------------------------------


def toxiproxy_state(url: str) -> dict[str, dict[str, Any]]:
    """Every proxy's enabled flag and toxic names, straight from the Toxiproxy API."""
    body = httpx.get(f"{url}/proxies", timeout=5).json()
    return {
        name: {"enabled": p["enabled"], "toxics": sorted(t["name"] for t in p["toxics"])}
        for name, p in body.items()
    }


def router_base(target: Target) -> str:
    return target.router_metrics_urls[0].removesuffix("/metrics")


def router_metric(target: Target, name: str, **labels: str) -> float:
    """Sum of `name`'s samples on the router's /metrics whose labels include `labels`."""
    text = httpx.get(target.router_metrics_urls[0], timeout=5).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def router_faults(target: Target) -> dict[str, Any]:
    return httpx.get(f"{router_base(target)}/faults", timeout=5).json()["faults"]


def router_ready(target: Target) -> bool:
    try:
        return httpx.get(f"{router_base(target)}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# --- NATS / JetStream --------------------------------------------------------------------------


async def consumer_info(nats_url: str) -> Any | None:
    nc = await nats.connect(nats_url, connect_timeout=3, allow_reconnect=False)
    try:
        return await nc.jetstream(timeout=5).consumer_info(STREAM, CONSUMER)
    except NotFoundError:
        return None
    finally:
        await nc.close()


def decide_request(request_id: str, tenant: str = "tenant-a") -> bytes:
    body = {
        "version": "1",
        "request_id": request_id,
        "tenant_id": tenant,
        "task": {"type": "text.generate", "payload": {"prompt": "fault test"}},
    }
    return json.dumps(body).encode()


async def decide_round(nats_url: str, count: int, timeout: float = 20.0) -> dict[str, int]:
    """Publish `count` decide requests; wait until each got an ok reply; replies per id."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    ids = [f"{prefix}-{i}" for i in range(count)]
    replies: dict[str, int] = {}
    nc = await nats.connect(nats_url, connect_timeout=3)
    try:

        async def on_reply(msg: Any) -> None:
            body = json.loads(msg.data)
            rid = body.get("context", {}).get("request_id")
            if rid in ids and body.get("ok"):
                replies[rid] = replies.get(rid, 0) + 1

        await nc.subscribe(f"{SUBJECT}.reply", cb=on_reply)
        await nc.flush()
        js = nc.jetstream(timeout=5)
        for rid in ids:
            await js.publish(
                SUBJECT,
                decide_request(rid),
                headers={"Nats-Msg-Id": rid, "tenant_id": "tenant-a", "trace_id": rid},
            )
        await poll(lambda: len(replies) == count, timeout, f"ok replies for {ids}")
    finally:
        await nc.close()
    return replies


async def consumer_settled(nats_url: str) -> bool:
    """Nothing pending and nothing awaiting an ACK on the router's consumer."""
    info = await consumer_info(nats_url)
    return info is not None and info.num_pending == 0 and info.num_ack_pending == 0


# --- polling ---------------------------------------------------------------------------------


async def poll(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll a sync or async condition until truthy; AssertionError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = condition()
            if isinstance(last, Awaitable):
                last = await last
        except Exception as exc:  # a failing probe is "not yet"
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last={last!r})")
        await anyio.sleep(interval)


# --- fault context -----------------------------------------------------------------------------


@asynccontextmanager
async def fault_context(target: Target, stack: LocalStack | None) -> AsyncIterator[FaultContext]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield FaultContext(target, ToxiproxyClient(target.toxiproxy_url), http, stack)


# --- the guard: the shared stack stays usable ------------------------------------------------


async def stack_problems(stack: LocalStack, target: Target) -> list[str]:
    """What a test left behind on the shared stack (empty when clean)."""
    problems = []
    for name, proxy in toxiproxy_state(target.toxiproxy_url).items():
        if not proxy["enabled"]:
            problems.append(f"proxy {name} disabled")
        if proxy["toxics"]:
            problems.append(f"proxy {name} has toxics {proxy['toxics']}")
    try:
        armed = router_faults(target)
    except httpx.HTTPError as exc:
        armed = {}
        problems.append(f"router /faults unreachable: {exc}")
    if armed:
        problems.append(f"router faults armed: {armed}")
    entries = Journal.for_target(target).entries()
    if entries:
        problems.append(f"journal entries left: {[e['key'] for e in entries]}")
    for name in ("nats", "router", "toxiproxy"):
        record = stack.record(name)
        if not record.alive() or process_state(record.pid) == "T":
            problems.append(f"{name} pid {record.pid} not running ({process_state(record.pid)})")
    return problems


async def repair(stack: LocalStack, target: Target) -> None:
    """Undo whatever a failed test left: continue/start components, reset proxies and hooks."""
    for name in ("nats", "toxiproxy", "router"):
        record = stack.record(name)
        if record.alive() and process_state(record.pid) == "T":
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pid, signal.SIGCONT)
        elif not record.alive():
            await stack.start_component(name)
    async with httpx.AsyncClient(timeout=5) as http:
        with contextlib.suppress(httpx.HTTPError):
            await http.post(f"{target.toxiproxy_url}/reset")
        with contextlib.suppress(httpx.HTTPError):
            await http.delete(f"{router_base(target)}/faults")
    journal = Journal.for_target(target)
    for entry in journal.entries():
        journal.remove(entry["key"])


async def wait_usable(stack: LocalStack, target: Target, timeout: float = 40.0) -> None:
    """Every component up, the router connected, its consumer present and drained."""

    async def all_up() -> bool:
        return all(s.state == "up" for s in await stack.status())

    await poll(all_up, timeout, "every stack component up", interval=0.3)
    await poll(lambda: router_ready(target), timeout, "router /readyz 200")
    await poll(lambda: consumer_settled(target.nats_url), timeout, "router consumer drained")
