"""What the NATS-aware toxics cost: JetStream messages/s through the proxy, with and without them.

A nats-py JetStream publisher (async publishes, a window in flight) and a pull consumer that acks
every message (`msg.ack()`), both connected through one proxy of the embedded server, which runs
in its own process as in the stack; a real nats-server behind it. The clock stops when the server's
ack floor reaches N (every message published, delivered and acked). Configurations, interleaved
over rounds (median reported):

    direct (no proxy)             for reference
    no toxic                      the plain relay
    noop toxic up+down            reference: what leaving the plain relay costs (pipeline only)
    nats_drop frames=ack up t=0   parses every client frame (publishes, fetches, acks), never acts
    nats_drop frames=msg down t=0 parses every server frame (deliveries, PubAcks), never acts

Goal: each toxic >= 0.8x of no toxic. Figures are printed, never asserted.

Measured on the shared 2-core dev box (the client, nats-server and the proxy compete for the
cores, so runs vary by +-15 %; even "direct" came out below "no toxic" once), 20000 x 128 B:
    no toxic 8473 msg/s; noop up+down x0.94; nats_drop ack up t=0 x0.88; msg down t=0 x0.87
    (an earlier run: x0.85 / x0.84; another: x0.94 / x1.04). nats-py is the bottleneck; the
    parser costs ~2-3 us per frame (one frame per read is the worst case).

    python benchmarks/nats_toxic_bench.py [--messages 20000] [--rounds 5] [--size 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.stack.binaries import find_binary  # noqa: E402

HOST = "127.0.0.1"
STREAM, SUBJECT, CONSUMER = "BENCH", "bench.orders", "bench"

PROXY_SERVER = r"""
import sys, uvloop
from harness.toxiproxy_server.logs import configure_logging
from harness.toxiproxy_server.server import ToxiproxyServer, _serve_until_signal
configure_logging("warning")
uvloop.run(_serve_until_signal(ToxiproxyServer("127.0.0.1", int(sys.argv[1]))))
"""

CONFIGS: dict[str, dict | str | None] = {
    "no toxic": None,
    "noop toxic up+down (pipeline only)": "noop",
    "nats_drop frames=ack upstream t=0": {
        "type": "nats_drop",
        "stream": "upstream",
        "toxicity": 0,
        "attributes": {"frames": "ack"},
    },
    "nats_drop frames=msg downstream t=0": {
        "type": "nats_drop",
        "stream": "downstream",
        "toxicity": 0,
        "attributes": {"frames": "msg", "subject": ">"},
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def api(port: int, method: str, path: str, body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@contextmanager
def nats_server() -> Iterator[int]:
    store = tempfile.mkdtemp(prefix="nats-bench-")
    port = free_port()
    command = [find_binary("nats-server"), "--jetstream", "--store_dir", store]
    proc = subprocess.Popen(
        [*command, "--addr", HOST, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(store, ignore_errors=True)


@contextmanager
def proxy_server() -> Iterator[int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen([sys.executable, "-c", PROXY_SERVER, str(port)], env=env)
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


async def reset_stream(url: str) -> None:
    """A fresh in-memory stream and durable pull consumer for one run."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    with suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(STREAM)
    await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT], storage=StorageType.MEMORY))
    config = ConsumerConfig(
        durable_name=CONSUMER, ack_policy=AckPolicy.EXPLICIT, max_ack_pending=-1
    )
    await js.add_consumer(STREAM, config)
    await nc.close()


async def one_run(direct: str, proxied: str, messages: int, size: int, window: int) -> float:
    """Messages/s from the first publish until the server's ack floor reaches `messages`."""
    await reset_stream(direct)
    publisher = await nats.connect(proxied)
    consumer = await nats.connect(proxied)
    watcher = await nats.connect(direct)
    pjs, cjs = publisher.jetstream(), consumer.jetstream()
    psub = await cjs.pull_subscribe_bind(CONSUMER, STREAM)
    body = b"x" * size

    async def publish() -> None:
        for start in range(0, messages, window):
            count = min(window, messages - start)
            await asyncio.gather(*(pjs.publish(SUBJECT, body) for _ in range(count)))

    async def consume() -> None:
        got = 0
        while got < messages:
            try:
                batch = await psub.fetch(min(256, messages - got), timeout=5)
            except nats.errors.TimeoutError:
                continue
            for msg in batch:
                await msg.ack()
            got += len(batch)
        await consumer.flush()

    began = time.perf_counter()
    await asyncio.gather(publish(), consume())
    info_js = watcher.jetstream()
    while True:  # every ack processed by the server
        info = await info_js.consumer_info(STREAM, CONSUMER)
        if info.ack_floor.stream_seq >= messages:
            break
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - began
    for nc in (publisher, consumer, watcher):
        await nc.close()
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=128, help="payload bytes")
    parser.add_argument("--window", type=int, default=256, help="publishes in flight")
    args = parser.parse_args()
    print(
        f"# {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {args.messages} x "
        f"{args.size} B JetStream messages, publish window {args.window}, fetch 256 + ack each;"
        f" median of {args.rounds} interleaved rounds"
    )
    with nats_server() as nats_port, proxy_server() as api_port:
        direct = f"nats://{HOST}:{nats_port}"
        results: dict[str, list[float]] = {name: [] for name in ("direct (no proxy)", *CONFIGS)}
        stats: dict[str, object] = {}
        proxies: dict[str, str] = {}
        proxies["direct (no proxy)"] = direct
        for i, (name, toxic) in enumerate(CONFIGS.items()):
            body = {"name": f"p{i}", "listen": f"{HOST}:0", "upstream": f"{HOST}:{nats_port}"}
            listen = api(api_port, "POST", "/proxies", body)["listen"]  # type: ignore[index]
            proxies[name] = f"nats://{listen}"
            if toxic == "noop":  # what any toxic costs: the link leaves the plain relay
                for stream in ("upstream", "downstream"):
                    api(
                        api_port,
                        "POST",
                        f"/proxies/p{i}/toxics",
                        {"type": "noop", "stream": stream},
                    )
            elif toxic is not None:
                api(api_port, "POST", f"/proxies/p{i}/toxics", {**toxic, "name": "t"})
        asyncio.run(one_run(direct, proxies["no toxic"], 2000, args.size, args.window))  # warm-up
        for _ in range(args.rounds):
            for name in results:
                rate = asyncio.run(
                    one_run(direct, proxies[name], args.messages, args.size, args.window)
                )
                results[name].append(rate)
        for i, (name, toxic) in enumerate(CONFIGS.items()):
            if isinstance(toxic, dict):
                stats[name] = api(api_port, "GET", f"/proxies/p{i}/toxics/t")["stats"]  # type: ignore[index]
    base = statistics.median(results["no toxic"])
    for name, rates in results.items():
        median = statistics.median(rates)
        runs = ", ".join(f"{rate:.0f}" for rate in rates)
        line = f"{name:<38} {median:8.0f} msg/s  (runs: {runs})  x{median / base:.2f}"
        if name in stats:
            line += f"  stats (all rounds) {stats[name]}"
        print(line)
    print("# goal: every toxic >= 0.8x of no toxic (printed, not asserted)")


if __name__ == "__main__":
    main()
