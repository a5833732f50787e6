"""Toxic changes while data streams: never a hang, never a lost or reordered byte."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.toxiproxy.helpers import Api, Upstream, connect, server_process, timed

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def process_api() -> Iterator[Api]:
    """The server in its own process, as deployed: our streaming threads do not share its GIL."""
    with server_process() as (_, api):
        yield api


@pytest.fixture
def api(process_api: Api) -> Iterator[Api]:
    process_api.clear()
    yield process_api
    process_api.clear()


_BLOCK = bytes(i % 251 for i in range(251 * 1024))
_DOUBLE = memoryview(_BLOCK * 2)


class PatternStream:
    """Streams a known byte pattern through the proxy to the echo and checks every byte back."""

    def __init__(self, port: int) -> None:
        self.sock = connect(port, timeout=10)
        self.sent = 0
        self.received = 0
        self.mismatch: int | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._write, daemon=True),
            threading.Thread(target=self._read, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _write(self) -> None:
        try:
            while not self._stop.is_set():
                offset = self.sent % len(_BLOCK)
                self.sock.sendall(_DOUBLE[offset : offset + 65536])
                self.sent += 65536
        except OSError as exc:
            self.error = exc

    def _read(self) -> None:
        buffer = bytearray(131072)  # < len(_BLOCK), so one slice of _DOUBLE covers a read
        view = memoryview(buffer)
        try:
            while True:
                n = self.sock.recv_into(buffer)
                if n == 0:
                    return
                offset = self.received % len(_BLOCK)
                if view[:n] != _DOUBLE[offset : offset + n] and self.mismatch is None:
                    self.mismatch = self.received
                self.received += n
        except OSError as exc:
            self.error = exc

    def progress(self, seconds: float) -> int:
        """Bytes echoed back during the next `seconds`."""
        before = self.received
        time.sleep(seconds)
        return self.received - before

    def finish(self, timeout: float = 10.0) -> None:
        """Stop sending, wait until every byte sent came back, and check them all."""
        self._stop.set()
        self._threads[0].join(timeout)
        deadline = time.monotonic() + timeout
        while self.received < self.sent and time.monotonic() < deadline:
            time.sleep(0.01)
        self.sock.close()
        assert self.error is None, self.error
        assert self.mismatch is None, f"stream corrupted at byte {self.mismatch}"
        assert self.received == self.sent, (self.received, self.sent)


@pytest.mark.parametrize(
    ("kind", "attributes"),
    [
        ("bandwidth", {"rate": 20_000}),
        ("latency", {"latency": 2000}),
        ("bandwidth", {"rate": 0}),
        ("slicer", {"average_size": 512, "size_variation": 256, "delay": 100}),
    ],
)
def test_removal_under_load_is_fast_and_lossless(
    api: Api, echo: Upstream, kind: str, attributes: dict
) -> None:
    port = api.create("load", echo.address)
    stream = PatternStream(port)
    assert stream.progress(0.2) > 0
    api.toxic("load", kind, attributes=attributes)
    time.sleep(0.4)  # let the toxic hold and buffer data (back-pressure reaches the sender)
    response, took_ms = timed(lambda: api.delete(f"/proxies/load/toxics/{kind}_downstream"))
    assert response.status_code == 204
    assert took_ms < 100, took_ms
    assert stream.progress(0.2) > 1_000_000  # back on the fast relay at full speed
    stream.finish()


def test_reset_under_load_is_fast_and_lossless(api: Api, echo: Upstream) -> None:
    port = api.create("load", echo.address)
    api.create("other", echo.address, enabled=False)
    stream = PatternStream(port)
    api.toxic("load", "bandwidth", stream="upstream", attributes={"rate": 10_000})
    api.toxic("load", "latency", attributes={"latency": 1000, "jitter": 100})
    time.sleep(0.4)
    response, took_ms = timed(lambda: api.post("/reset"))
    assert response.status_code == 204
    assert took_ms < 100, took_ms
    assert stream.progress(0.2) > 1_000_000
    stream.finish()


def test_toggling_toxics_mid_stream_loses_and_reorders_nothing(api: Api, echo: Upstream) -> None:
    port = api.create("load", echo.address)
    stream = PatternStream(port)
    slicer = {"average_size": 4096, "size_variation": 1024}
    for round_ in range(6):
        api.toxic("load", "latency", name="lat", attributes={"latency": 0})
        time.sleep(0.02)
        api.toxic("load", "slicer", stream="upstream", name="sl", attributes=slicer)
        api.toxic("load", "noop", name="nop")
        time.sleep(0.02)
        api.post("/proxies/load/toxics/lat", json={"attributes": {"latency": round_ % 3}})
        api.delete("/proxies/load/toxics/lat")
        time.sleep(0.02)
        api.patch("/proxies/load/toxics/sl", json={"attributes": {"delay": 10}})
        api.delete("/proxies/load/toxics/nop")
        api.delete("/proxies/load/toxics/sl")
        time.sleep(0.02)
    assert stream.progress(0.1) > 0
    stream.finish()
    assert stream.received > 10_000_000
