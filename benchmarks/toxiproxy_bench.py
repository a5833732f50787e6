"""Side-by-side benchmark of the embedded Toxiproxy server's data path (issue 3).

One run, same machine: a loopback TCP echo reached directly, through a proxy with no toxics, and
through a proxy with a 0 ms latency toxic present (downstream). For each: small-message round-trip
p50/p99 and bulk throughput (MB/s = 10^6 B/s): "echo" counts payload echoed back per second (every
byte crosses the proxy twice), "one-way" streams into a sink (comparable to Toxiproxy's published
figure); then the ratios against direct. Goals from the issue: added round-trip p50 <= 100 us;
throughput >= 1000 MB/s and >= 40 % of direct. Figures are printed, never asserted.

The echo server and the proxy each run in their own process (the proxy as it runs in the stack),
the client here with blocking sockets. Both event loops are measured for the proxy.

Event-loop choice: serve() uses uvloop. Measured with this script on the 2-core dev box (shared,
so bulk figures swing by +-30 % between runs), no toxic, 5000 round trips, 256 MiB bulk:
    uvloop : added p50 +41..+46 us, echo 523..715 MB/s, one-way 1403..1491 MB/s
    asyncio: added p50 +62..+81 us, echo 529..807 MB/s, one-way  986..1025 MB/s
    (direct: p50 27 us, echo 1100..1670 MB/s, one-way 2050..3250 MB/s)
uvloop cuts the added latency by ~40 % and is at least as fast in bulk. Raising the destination
write-buffer high-water from 64 KiB to 256 KiB took uvloop's echo bulk from ~490 to ~830 MB/s.

Run: python benchmarks/toxiproxy_bench.py [--messages N] [--bulk-mib N] [--loops uvloop,asyncio]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

HOST = "127.0.0.1"

ECHO_SERVER = r"""
import asyncio, sys, uvloop

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
    def data_received(self, data):
        self.t.write(data)
    def pause_writing(self):
        self.t.pause_reading()
    def resume_writing(self):
        self.t.resume_reading()

class Sink(asyncio.Protocol):
    # reads an 8-byte length, swallows that many bytes, then answers b"k"
    def connection_made(self, transport):
        self.t, self.buf, self.want, self.got = transport, b"", None, 0
    def data_received(self, data):
        if self.want is None:
            self.buf += data
            if len(self.buf) < 8:
                return
            self.want, data, self.buf = int.from_bytes(self.buf[:8], "big"), self.buf[8:], b""
        self.got += len(data)
        if self.got >= self.want:
            self.t.write(b"k")

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    sink = await loop.create_server(Sink, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], sink.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

uvloop.run(main())
"""

PROXY_SERVER = r"""
import asyncio, sys
from harness.toxiproxy_server.logs import configure_logging
from harness.toxiproxy_server.server import ToxiproxyServer, _serve_until_signal
configure_logging("warning")
server = ToxiproxyServer("127.0.0.1", int(sys.argv[2]))
if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(_serve_until_signal(server))
else:
    asyncio.run(_serve_until_signal(server))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def echo_server() -> Iterator[tuple[int, int]]:
    """Ports of the echo and of the one-way sink, in their own process."""
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        echo, sink = proc.stdout.readline().split()  # type: ignore[union-attr]
        yield int(echo), int(sink)
    finally:
        proc.terminate()
        proc.wait(5)


def api(port: int, method: str, path: str, body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@contextmanager
def proxy_server(loop: str) -> Iterator[int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-c", PROXY_SERVER, loop, str(port)], env=env)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                api(port, "GET", "/version")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def port_of(proxy: object) -> int:
    return int(proxy["listen"].rsplit(":", 1)[1])  # type: ignore[index]


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trips(port: int, count: int, size: int = 64) -> list[float]:
    """Round-trip times (µs) of `count` small messages, one at a time, after a warm-up."""
    message = b"x" * size
    times = []
    with connect(port) as sock:
        for i in range(count + 200):
            start = time.perf_counter_ns()
            sock.sendall(message)
            got = 0
            while got < size:
                got += len(sock.recv(size - got))
            if i >= 200:
                times.append((time.perf_counter_ns() - start) / 1000)
    return times


def bulk(port: int, total: int, block: int = 256 * 1024) -> float:
    """MB/s (10^6 bytes) of payload echoed back, sender and receiver in parallel."""
    payload = b"\xa5" * block
    with connect(port) as sock:

        def send() -> None:
            sent = 0
            while sent < total:
                sock.sendall(payload)
                sent += block

        start = time.perf_counter()
        sender = threading.Thread(target=send)
        sender.start()
        received = 0
        buffer = bytearray(block)
        while received < total:
            n = sock.recv_into(buffer)
            if n == 0:
                raise EOFError("echo closed early")
            received += n
        elapsed = time.perf_counter() - start
        sender.join()
    return total / elapsed / 1e6


def one_way(port: int, total: int, block: int = 256 * 1024) -> float:
    """MB/s client -> sink (one direction, like Toxiproxy's published figure)."""
    payload = b"\xa5" * block
    with connect(port) as sock:
        start = time.perf_counter()
        sock.sendall(total.to_bytes(8, "big"))
        sent = 0
        while sent < total:
            sock.sendall(payload)
            sent += block
        if sock.recv(1) != b"k":
            raise EOFError("sink closed early")
        elapsed = time.perf_counter() - start
    return total / elapsed / 1e6


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def measure(ports: tuple[int, int], messages: int, total: int) -> dict[str, float]:
    rtts = round_trips(ports[0], messages)
    return {
        "p50": statistics.median(rtts),
        "p99": percentile(rtts, 99),
        "mbps": max(bulk(ports[0], total) for _ in range(2)),
        "oneway": max(one_way(ports[1], total) for _ in range(2)),
    }


def row(name: str, m: dict[str, float], direct: dict[str, float] | None) -> str:
    text = (
        f"{name:<34} p50 {m['p50']:7.1f} us  p99 {m['p99']:7.1f} us"
        f"  echo {m['mbps']:7.1f} MB/s  one-way {m['oneway']:7.1f} MB/s"
    )
    if direct is not None:
        text += (
            f"  | added p50 {m['p50'] - direct['p50']:+6.1f} us"
            f" (x{m['p50'] / direct['p50']:.2f})"
            f"  echo {100 * m['mbps'] / direct['mbps']:5.1f} %"
            f"  one-way {100 * m['oneway'] / direct['oneway']:5.1f} % of direct"
        )
    return text


def add_proxy(api_port: int, name: str, upstream_port: int) -> int:
    body = {"name": name, "listen": f"{HOST}:0", "upstream": f"{HOST}:{upstream_port}"}
    return port_of(api(api_port, "POST", "/proxies", body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--bulk-mib", type=int, default=256)
    parser.add_argument("--loops", default="uvloop,asyncio")
    args = parser.parse_args()
    total = args.bulk_mib * 1024 * 1024
    print(
        f"# {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {args.messages} x 64 B round"
        f" trips; {args.bulk_mib} MiB bulk, echo (payload back per s) and one-way, best of 2"
    )
    with echo_server() as (echo_port, sink_port):
        direct = measure((echo_port, sink_port), args.messages, total)
        print(row("direct loopback", direct, None))
        for loop in args.loops.split(","):
            with proxy_server(loop) as api_port:
                ports = (
                    add_proxy(api_port, "echo", echo_port),
                    add_proxy(api_port, "sink", sink_port),
                )
                plain = measure(ports, args.messages, total)
                print(row(f"proxy [{loop}] no toxic", plain, direct))
                for name in ("echo", "sink"):
                    toxic_body = {"type": "latency", "attributes": {"latency": 0}}
                    api(api_port, "POST", f"/proxies/{name}/toxics", toxic_body)
                toxic = measure(ports, args.messages, total)
                print(row(f"proxy [{loop}] latency 0 ms toxic", toxic, direct))
    print("# goals: added p50 <= 100 us; throughput >= 1000 MB/s and >= 40 % of direct")


if __name__ == "__main__":
    main()
