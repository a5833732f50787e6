"""Each toxic over real loopback TCP with a local upstream, timed (spec §2; tolerance ±10 ms)."""

from __future__ import annotations

import socket
import time

import pytest
from structlog.testing import capture_logs

from harness.toxiproxy_server import connection
from tests.toxiproxy.helpers import (
    Api,
    Upstream,
    connect,
    eventually,
    is_open,
    median_rtt_ms,
    recv_all,
    recv_exactly,
    round_trip,
    timed,
)

pytestmark = pytest.mark.live

TOLERANCE_MS = 10.0


def base_rtt_ms(port: int) -> float:
    with connect(port) as sock:
        return median_rtt_ms(sock)


# -- latency -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_each_direction(api: Api, echo: Upstream, stream: str) -> None:
    port = api.create("p", echo.address)
    base = base_rtt_ms(port)
    api.toxic("p", "latency", stream=stream, attributes={"latency": 60})
    with connect(port) as sock:
        rtt = median_rtt_ms(sock)
    assert abs(rtt - base - 60) <= TOLERANCE_MS, (rtt, base)


def test_latency_both_directions_and_two_toxics_add_up(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    base = base_rtt_ms(port)
    api.toxic("p", "latency", stream="upstream", attributes={"latency": 20})
    api.toxic("p", "latency", name="d1", attributes={"latency": 15})
    api.toxic("p", "latency", name="d2", attributes={"latency": 25})
    with connect(port) as sock:
        rtt = median_rtt_ms(sock)
    assert abs(rtt - base - 60) <= 2 * TOLERANCE_MS, (rtt, base)


def test_latency_with_jitter_stays_in_range_and_varies(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "latency", attributes={"latency": 60, "jitter": 30})
    with connect(port) as sock:
        samples = [round_trip(sock) * 1000 for _ in range(12)]
    assert min(samples) >= 60 - 30 - TOLERANCE_MS, samples  # load can only add delay
    within = [s for s in samples if s <= 60 + 30 + TOLERANCE_MS]
    assert len(within) >= len(samples) - 2, samples  # allow a scheduling hiccup or two
    assert max(samples) - min(samples) > 10, samples  # jitter really varies the delay


def test_latency_is_per_chunk_and_does_not_cut_throughput(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "latency", attributes={"latency": 100})
    with connect(port) as sock:
        start = time.perf_counter()
        for _ in range(10):  # ten messages 10 ms apart all arrive ~100 ms after they were sent
            sock.sendall(b"0123456789")
            time.sleep(0.01)
        recv_exactly(sock, 100)
        elapsed = (time.perf_counter() - start) * 1000
    assert abs(elapsed - 200) <= 2 * TOLERANCE_MS + 10, elapsed


def test_latency_added_and_removed_on_a_live_connection(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    with connect(port) as sock:
        base = median_rtt_ms(sock)
        api.toxic("p", "latency", attributes={"latency": 50})
        assert abs(median_rtt_ms(sock) - base - 50) <= TOLERANCE_MS
        api.post("/proxies/p/toxics/latency_downstream", json={"attributes": {"latency": 20}})
        assert abs(median_rtt_ms(sock) - base - 20) <= TOLERANCE_MS
        api.delete("/proxies/p/toxics/latency_downstream")
        assert median_rtt_ms(sock) < base + 5


def test_latency_removal_releases_held_data_at_once(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "latency", attributes={"latency": 5000})
    with connect(port) as sock:
        start = time.perf_counter()
        sock.sendall(b"held")
        time.sleep(0.05)
        api.delete("/proxies/p/toxics/latency_downstream")
        assert recv_exactly(sock, 4) == b"held"
        assert time.perf_counter() - start < 1.0


def test_int64_max_latency_holds_until_removed(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "latency", attributes={"latency": 2**63 - 1, "jitter": 2**62})
    with connect(port) as sock:
        sock.sendall(b"later")
        assert is_open(sock, 0.2)
        api.delete("/proxies/p/toxics/latency_downstream")
        assert recv_exactly(sock, 5) == b"later"


# -- toxicity ------------------------------------------------------------------------------------


def test_toxicity_zero_never_and_one_always(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "latency", toxicity=0.0, attributes={"latency": 80})
    for _ in range(5):
        with connect(port) as sock:
            assert median_rtt_ms(sock, 3) < 40
    api.post("/proxies/p/toxics/latency_downstream", json={"toxicity": 1.0})
    for _ in range(5):
        with connect(port) as sock:
            assert median_rtt_ms(sock, 3) >= 80 - TOLERANCE_MS


def test_toxicity_is_decided_per_connection(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "latency", toxicity=0.5, attributes={"latency": 60})
    verdicts = []
    for _ in range(16):
        with connect(port) as sock:
            rtts = [round_trip(sock) * 1000 for _ in range(3)]
        slow = [r >= 50 for r in rtts]
        assert len(set(slow)) == 1, rtts  # a whole connection is affected or not
        verdicts.append(slow[0])
    assert 0 < sum(verdicts) < len(verdicts), verdicts


# -- bandwidth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_bandwidth_rate_within_ten_percent(api: Api, echo: Upstream, stream: str) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "bandwidth", stream=stream, attributes={"rate": 1000})  # 1000 KB/s
    payload = bytes(range(256)) * 1875  # 480,000 bytes -> 480 ms
    with connect(port) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        elapsed = time.perf_counter() - start
    rate = len(payload) / elapsed / 1000
    assert 900 <= rate <= 1100, (rate, elapsed)


def test_bandwidth_zero_stalls_until_removed(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "bandwidth", attributes={"rate": 0})
    with connect(port) as sock:
        sock.sendall(b"stuck")
        assert is_open(sock, 0.3)  # nothing arrives
        api.delete("/proxies/p/toxics/bandwidth_downstream")
        assert recv_exactly(sock, 5) == b"stuck"


# -- slow_close ----------------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 200])
def test_slow_close_downstream(api: Api, delay: int) -> None:
    greeter = Upstream("greet_close", greeting=b"hello")
    try:
        port = api.create("p", greeter.address)
        if delay:
            api.toxic("p", "slow_close", attributes={"delay": delay})
        with connect(port) as sock:
            start = time.perf_counter()
            assert recv_exactly(sock, 5) == b"hello"
            data_ms = (time.perf_counter() - start) * 1000
            assert recv_all(sock) == b""
            close_ms = (time.perf_counter() - start) * 1000
        assert data_ms < 50
        assert abs(close_ms - delay) <= TOLERANCE_MS + 5, close_ms
    finally:
        greeter.close()


# -- timeout -------------------------------------------------------------------------------------


def test_timeout_drops_data_and_closes_after_idle(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "timeout", attributes={"timeout": 100})
    with connect(port) as sock:
        start = time.perf_counter()
        for _ in range(6):  # echoed data every 40 ms keeps restarting the countdown
            last_sent = time.perf_counter()
            sock.sendall(b"x")
            time.sleep(0.04)
        assert recv_all(sock) == b""  # everything was swallowed, then EOF
        closed = time.perf_counter()
    assert (last_sent - start) * 1000 >= 200  # alive well past one timeout
    idle_ms = (closed - last_sent) * 1000
    assert abs(idle_ms - 100) <= TOLERANCE_MS + 5, idle_ms


def test_timeout_zero_never_closes_and_removal_closes(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "timeout", stream="upstream", attributes={"timeout": 0})
    with connect(port) as sock:
        sock.sendall(b"lost")
        assert is_open(sock, 0.3)
        _, took = timed(lambda: api.delete("/proxies/p/toxics/timeout_upstream"))
        assert took < 100
        sock.settimeout(2)
        assert recv_all(sock) == b""  # removal closes live connections; dropped data is gone
    with connect(port) as fresh:
        assert round_trip(fresh) < 0.05


def test_reset_closes_connections_that_had_a_timeout_toxic(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "timeout", toxicity=0.0)
    with connect(port) as sock:
        assert round_trip(sock) < 0.05  # toxicity 0: not applied...
        assert api.post("/reset").status_code == 204
        sock.settimeout(2)
        assert recv_all(sock) == b""  # ...but its removal still closes the connection


# -- reset_peer ----------------------------------------------------------------------------------


def test_reset_peer_resets_both_sides_on_first_data(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    api.toxic("p", "reset_peer", stream="upstream", attributes={"timeout": 100})
    with connect(port) as sock:
        peer = sink.wait_peer()
        assert is_open(sock, 0.2)  # nothing happens until data flows
        start = time.perf_counter()
        sock.sendall(b"boom")
        with pytest.raises(ConnectionResetError):
            sock.settimeout(2)
            while sock.recv(10):
                pass
        elapsed = (time.perf_counter() - start) * 1000
    assert abs(elapsed - 100) <= 2 * TOLERANCE_MS + 10, elapsed
    assert peer.closed.wait(2)
    assert bytes(peer.received) == b""  # the triggering chunk was dropped
    assert isinstance(peer.error, ConnectionResetError)


def test_reset_peer_with_toxicity_zero_closes_normally(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "reset_peer", toxicity=0.0)
    with connect(port) as sock:
        assert round_trip(sock) < 0.05
        sock.close()  # closes with FIN; no RST towards the upstream
    peer = echo.peers[-1]
    assert peer.closed.wait(2)
    assert peer.error is None


# -- slicer --------------------------------------------------------------------------------------


def test_slicer_splits_into_delayed_pieces(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    api.toxic(
        "p",
        "slicer",
        stream="upstream",
        attributes={"average_size": 1, "size_variation": 0, "delay": 10_000},
    )
    message = b"abcdefghijklmnopqrstuvwx"  # 24 bytes -> 24 one-byte pieces, 10 ms apart
    with connect(port) as sock:
        sock.sendall(message)
        peer = sink.wait_peer()
        assert eventually(lambda: len(peer.received) == 24, 3)
        assert bytes(peer.received) == message
        assert peer.first_at is not None
        spread_ms = (time.monotonic() - peer.first_at) * 1000
    assert peer.reads >= 12  # really delivered in pieces
    assert spread_ms >= 200


def test_slicer_keeps_bulk_data_intact(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "slicer", attributes={"average_size": 1024, "size_variation": 512})
    payload = bytes(range(256)) * 1875
    with connect(port) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload


# -- limit_data ----------------------------------------------------------------------------------


def test_limit_data_upstream_delivers_exactly_n_bytes(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    api.toxic("p", "limit_data", stream="upstream", attributes={"bytes": 100})
    with connect(port) as sock:
        sock.sendall(b"a" * 60)
        time.sleep(0.05)
        sock.sendall(b"b" * 60)
        sock.settimeout(2)
        assert recv_all(sock) == b""
    peer = sink.wait_peer()
    assert peer.closed.wait(2)
    assert bytes(peer.received) == b"a" * 60 + b"b" * 40


def test_limit_data_downstream_and_zero(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "limit_data", attributes={"bytes": 10})
    with connect(port) as sock:
        sock.sendall(b"0123456789abcdef")
        assert recv_all(sock) == b"0123456789"
    api.post("/proxies/p/toxics/limit_data_downstream", json={"attributes": {"bytes": 0}})
    with connect(port) as sock:
        assert is_open(sock, 0.2)  # bytes=0 closes on the first data, not at connect
        sock.sendall(b"x")
        assert recv_all(sock) == b""


def test_limit_data_count_survives_update(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "limit_data", attributes={"bytes": 8})
    with connect(port) as sock:
        sock.sendall(b"12345")
        assert recv_exactly(sock, 5) == b"12345"
        api.post("/proxies/p/toxics/limit_data_downstream", json={"attributes": {"bytes": 12}})
        sock.sendall(b"abcdefghij")
        assert recv_all(sock) == b"abcdefg"  # 5 already counted + 7 = 12


# -- proxy state ---------------------------------------------------------------------------------


def test_disable_closes_connections_and_enable_rebinds_same_port(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    sock = connect(port)
    assert round_trip(sock) < 0.05
    api.post("/proxies/p", json={"enabled": False})
    assert not is_open(sock, 1.0)
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    response = api.post("/proxies/p", json={"enabled": True})
    assert response.json()["listen"] == f"127.0.0.1:{port}"
    with connect(port) as again:
        assert round_trip(again) < 0.05


def test_unreachable_upstream_closes_client_promptly(api: Api) -> None:
    with socket.socket() as reserved, capture_logs() as logs:
        reserved.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
        dead = reserved.getsockname()[1]
        port = api.create("p", f"127.0.0.1:{dead}")
        with connect(port) as sock:  # accept succeeds (as with Go)...
            sock.settimeout(2)
            data, took = timed(lambda: recv_all(sock))
    assert data == b""  # ...then EOF
    assert took < 500
    failures = [e for e in logs if e["event"] == "upstream_dial_failed"]
    assert failures and failures[0]["upstream"] == f"127.0.0.1:{dead}"
    assert failures[0]["log_level"] == "warning"


def test_black_holed_upstream_times_out_without_blocking_accepts(
    api: Api, echo: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "DIAL_TIMEOUT", 0.3)
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)  # never accepts: once its queue is full, further SYNs are dropped
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(hole.getsockname())
            fillers.append(filler)
        port = api.create("hole", f"127.0.0.1:{hole.getsockname()[1]}")
        good = api.create("good", echo.address)
        with connect(port) as stuck:
            with connect(good) as other:  # the pending dial blocks no other accept
                assert round_trip(other) < 0.05
            stuck.settimeout(3)
            data, took = timed(lambda: recv_all(stuck))
        for filler in fillers:
            filler.close()
    assert data == b""
    assert 250 <= took < 1500, took  # closed by the dial timeout, not by a refusal
