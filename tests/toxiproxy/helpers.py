"""Test helpers: the server on its own loop thread, loopback upstreams that record, timing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import requests
import uvloop

from harness.toxiproxy_server.server import ToxiproxyServer

HOST = "127.0.0.1"


class ServerThread:
    """A ToxiproxyServer on its own event loop in a daemon thread.

    uvloop by default (what `serve()` runs); TOXIPROXY_TEST_LOOP=asyncio runs the same tests on
    the standard loop, which embedding callers may use.
    """

    def __init__(self, **kwargs: Any) -> None:
        if os.environ.get("TOXIPROXY_TEST_LOOP") == "asyncio":
            self.loop = asyncio.new_event_loop()
        else:
            self.loop = uvloop.new_event_loop()
        self.server = ToxiproxyServer(HOST, 0, **kwargs)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.call(self.server.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return self.server.url


class Api:
    """Raw HTTP against the API (python-requests, whose User-Agent the guard lets through)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0", **extra: Any) -> int:
        """Create a proxy and return its bound port."""
        response = self.post(
            "/proxies", json={"name": name, "listen": listen, "upstream": upstream, **extra}
        )
        assert response.status_code == 201, response.text
        return port_of(response.json()["listen"])

    def toxic(self, proxy: str, type: str, stream: str = "downstream", **fields: Any) -> dict:
        body = {"type": type, "stream": stream, **fields}
        response = self.post(f"/proxies/{proxy}/toxics", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def clear(self) -> None:
        for name in self.get("/proxies").json():
            self.delete(f"/proxies/{name}")


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


class Peer:
    """One connection accepted by an upstream: what it received, and when."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received = bytearray()
        self.reads = 0
        self.first_at: float | None = None
        self.closed = threading.Event()
        self.error: BaseException | None = None


class Upstream:
    """A loopback TCP server with one thread per connection; echoes unless told otherwise."""

    def __init__(self, mode: str = "echo", greeting: bytes = b"") -> None:
        self.mode = mode
        self.greeting = greeting
        self.peers: list[Peer] = []
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self.address = f"{HOST}:{self.port}"
        self._accepted = threading.Condition()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            peer = Peer(sock)
            with self._accepted:
                self.peers.append(peer)
                self._accepted.notify_all()
            threading.Thread(target=self._serve, args=(peer,), daemon=True).start()

    def _serve(self, peer: Peer) -> None:
        sock = peer.sock
        try:
            if self.greeting:
                sock.sendall(self.greeting)
            if self.mode == "greet_close":
                return
            while data := sock.recv(262144):
                if peer.first_at is None:
                    peer.first_at = time.monotonic()
                peer.reads += 1
                if self.mode == "echo":
                    sock.sendall(data)
                else:
                    peer.received += data
        except OSError as exc:
            peer.error = exc
        finally:
            sock.close()
            peer.closed.set()

    def wait_peer(self, count: int = 1, timeout: float = 5.0) -> Peer:
        with self._accepted:
            assert self._accepted.wait_for(lambda: len(self.peers) >= count, timeout)
            return self.peers[count - 1]

    def close(self) -> None:
        self._listener.close()


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f"EOF after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def recv_all(sock: socket.socket) -> bytes:
    """Everything until EOF."""
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def round_trip(sock: socket.socket, message: bytes = b"ping") -> float:
    """Seconds for one echo round trip."""
    start = time.perf_counter()
    sock.sendall(message)
    recv_exactly(sock, len(message))
    return time.perf_counter() - start


def median_rtt_ms(sock: socket.socket, samples: int = 5) -> float:
    """Median of a few round trips: one scheduling hiccup on a busy machine must not fail a test."""
    return statistics.median(round_trip(sock) for _ in range(samples)) * 1000


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1000


def is_open(sock: socket.socket, wait: float = 0.1) -> bool:
    """True if nothing (no data, no EOF, no reset) arrives within `wait` seconds."""
    sock.settimeout(wait)
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(5.0)
    return bool(data)


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@contextlib.contextmanager
def refused_check(port: int) -> Iterator[None]:
    yield
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except ConnectionRefusedError:
        return
    raise AssertionError(f"port {port} still accepts connections")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def server_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], Api]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.toxiproxy_server", "--port", str(port), *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    api = Api(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                api.get("/version", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.05)
        yield proc, api
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
