"""Decide throughput of the router vs a bare fetch + ack_sync consumer, side by side in one run.

Both consumers run as their own process against the same nats-server; this process publishes N
decide requests (core publish into the stream) and stops the clock when the consumer's ack floor
reaches N. For the router that means every request was answered on the reply subject and ACKed.
Figures are printed, never asserted (goal: router >= 50 % of bare).

    python benchmarks/router_bench.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.stack.ports import free_port  # noqa: E402

BARE = {"stream": "bench-bare", "subject": "bench.bare.v1.decide", "consumer": "bench-bare"}
ROUTED = {"stream": "bench-router", "subject": "bench.router.v1.decide", "consumer": "bench-router"}


def payload(i: int) -> bytes:
    return json.dumps(
        {"version": "1", "request_id": f"bench-{i}", "tenant_id": "tenant-a", "task": {"type": "x"}}
    ).encode()


async def bare_worker(url: str) -> None:
    """The baseline: fetch batches, ack_sync each message, nothing else."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(name=BARE["stream"], subjects=[BARE["subject"]], storage=StorageType.MEMORY)
    )
    await js.add_consumer(
        BARE["stream"],
        ConsumerConfig(
            durable_name=BARE["consumer"], ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20000
        ),
    )
    psub = await js.pull_subscribe_bind(consumer=BARE["consumer"], stream=BARE["stream"])
    print("ready", flush=True)
    while True:
        try:
            msgs = await psub.fetch(100, timeout=1)
        except nats.errors.TimeoutError:
            continue
        for msg in msgs:
            await msg.ack_sync()


async def publish_and_wait(url: str, target: dict[str, str], count: int) -> float:
    """Publish `count` requests, return seconds until the consumer's ack floor reaches them."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    start_seq = (await js.stream_info(target["stream"])).state.last_seq
    started = time.perf_counter()
    for i in range(count):
        await nc.publish(target["subject"], payload(i))
        if i % 500 == 499:
            await nc.flush()
    await nc.flush()
    while True:
        info = await js.consumer_info(target["stream"], target["consumer"])
        if info.ack_floor.stream_seq >= start_seq + count:
            elapsed = time.perf_counter() - started
            break
        await asyncio.sleep(0.01)
    await nc.close()
    return elapsed


async def count_replies(url: str, subject: str, ready: asyncio.Event, done: list[int]) -> None:
    nc = await nats.connect(url)

    async def on_reply(_: object) -> None:
        done[0] += 1

    await nc.subscribe(subject, cb=on_reply)
    await nc.flush()
    ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await nc.close()


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = urllib.request.urlopen(url, timeout=2).read().decode()
            if "router_nats_subscribe_total 1.0" in body:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"router not ready at {url}")


def router_latency(metrics_url: str) -> dict[str, float]:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("router_intake_processing_latency_p"):
                values[sample.name.rsplit("_", 1)[1]] = sample.value
    return values


async def bare_phase(url: str, warmup: int, count: int) -> float:
    await publish_and_wait(url, BARE, warmup)
    return await publish_and_wait(url, BARE, count)


async def router_phase(url: str, warmup: int, count: int) -> tuple[float, int]:
    replies = [0]
    ready = asyncio.Event()
    counter = asyncio.create_task(count_replies(url, ROUTED["subject"] + ".reply", ready, replies))
    await ready.wait()
    await publish_and_wait(url, ROUTED, warmup)
    elapsed = await publish_and_wait(url, ROUTED, count)
    await asyncio.sleep(0.3)
    counter.cancel()
    return elapsed, replies[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--bare-worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        try:  # same event loop as the router gets, for a fair baseline
            import uvloop

            uvloop.run(bare_worker(args.bare_worker))
        except ImportError:
            asyncio.run(bare_worker(args.bare_worker))
        return

    workdir = Path(tempfile.mkdtemp(prefix="router-bench-"))
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    server = subprocess.Popen(
        ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(workdir / "js")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        time.sleep(0.5)
        bare = subprocess.Popen(
            [sys.executable, __file__, "--bare-worker", url], stdout=subprocess.PIPE, cwd=REPO_ROOT
        )
        procs.append(bare)
        assert bare.stdout is not None
        bare.stdout.readline()  # "ready"
        bare_s = asyncio.run(bare_phase(url, args.warmup, args.messages))
        bare.terminate()

        metrics_port = free_port()
        with open(workdir / "router.log", "wb") as router_log:
            router = subprocess.Popen(
                [
                    sys.executable, "-m", "router", "--nats-url", url,
                    "--metrics-port", str(metrics_port), "--subject", ROUTED["subject"],
                    "--stream", ROUTED["stream"], "--dlq-stream", "bench-router-dlq",
                    "--consumer", ROUTED["consumer"], "--stream-storage", "memory",
                    "--tenant-allowlist", "tenant-a", "--latency-window", "600",
                    "--log-level", "warning",
                ],
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=router_log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        procs.append(router)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_http(metrics_url)
        router_s, answered = asyncio.run(router_phase(url, args.warmup, args.messages))
        latency = router_latency(metrics_url)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.terminate()
        server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    bare_rate = args.messages / bare_s
    router_rate = args.messages / router_s
    print(f"messages per run           : {args.messages} (after {args.warmup} warm-up)")
    print(f"bare fetch+ack_sync        : {bare_rate:9.0f} msg/s  ({bare_s:.2f} s)")
    print(f"router decide end-to-end   : {router_rate:9.0f} req/s  ({router_s:.2f} s)")
    print(f"router / bare              : {router_rate / bare_rate:9.1%}  (goal >= 50 %)")
    print(f"replies received           : {answered} of {args.messages + args.warmup}")
    print(
        "router processing latency  : "
        f"p50 {latency.get('p50', 0):.2f} ms, p95 {latency.get('p95', 0):.2f} ms, "
        f"p99 {latency.get('p99', 0):.2f} ms (fetch -> reply published + ACK confirmed)"
    )


if __name__ == "__main__":
    main()
