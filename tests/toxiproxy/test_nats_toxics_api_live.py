"""The NATS-aware toxics through the API and over raw loopback TCP (no nats-server needed).

Crafted protocol bytes go through a proxy to a recording sink (upstream) or an echo (downstream),
so every assertion is on exact bytes: which frames went on, in what order, and that nothing was
lost or split, also across toxic updates and removals.
"""

from __future__ import annotations

import time

import pytest

from tests.toxiproxy.helpers import Api, Upstream, connect, eventually, recv_exactly

pytestmark = pytest.mark.live

ACK = b"PUB $JS.ACK.ORDERS.worker.1.7.7.1700000000.0 _INBOX.a.1 4\r\n+ACK\r\n"
EMPTY_ACK = b"PUB $JS.ACK.ORDERS.worker.1.8.8.1700000000.0 0\r\n\r\n"
NAK = b"PUB $JS.ACK.ORDERS.worker.1.9.9.1700000000.0 4\r\n-NAK\r\n"
TERM = b"PUB $JS.ACK.ORDERS.worker.1.10.10.1700000000.0 11\r\n+TERM later\r\n"
WPI = b"PUB $JS.ACK.OTHER.worker.1.11.11.1700000000.0 4\r\n+WPI\r\n"
HACK = b"HPUB $JS.ACK.ORDERS.worker.1.12.12.1700000000.0 12 16\r\nNATS/1.0\r\n\r\n+ACK\r\n"
DATA = b"PUB orders.eu 5\r\nhello\r\n"
PING = b"PING\r\n"


def stats(api: Api, name: str, proxy: str = "p") -> dict[str, int]:
    return api.get(f"/proxies/{proxy}/toxics/{name}").json()["stats"]


def sent_through(port: int, sink: Upstream, data: bytes, expected: int) -> bytes:
    """Send `data` through the proxy; what the sink got once it has `expected` bytes."""
    with connect(port) as sock:
        sock.sendall(data)
        peer = sink.wait_peer()
        assert eventually(lambda: len(peer.received) >= expected), bytes(peer.received)
        time.sleep(0.05)  # nothing more may arrive
        return bytes(peer.received)


# -- the API ---------------------------------------------------------------------------------------


def test_defaults_and_read_back(api: Api, sink: Upstream) -> None:
    api.create("p", sink.address)
    body = api.toxic("p", "nats_drop", stream="upstream")
    assert list(body) == ["attributes", "name", "type", "stream", "toxicity", "stats"]
    assert body == {
        "attributes": {"frames": "ack", "subject": ">"},
        "name": "nats_drop_upstream",
        "type": "nats_drop",
        "stream": "upstream",
        "toxicity": 1,
        "stats": {"frames": 0, "matched": 0, "acted": 0},
    }
    body = api.toxic("p", "nats_delay", stream="upstream", toxicity=0.25)
    assert body["attributes"] == {"frames": "ack", "subject": ">", "delay": 0, "jitter": 0}
    assert body["toxicity"] == 0.25
    body = api.toxic("p", "nats_drop", attributes={"frames": "msg", "subject": "orders.*"})
    assert body["attributes"] == {"frames": "msg", "subject": "orders.*"}
    assert body["stream"] == "downstream"
    # the Toxiproxy types keep their exact shape: no stats field
    latency = api.toxic("p", "latency", stream="upstream")
    assert list(latency) == ["attributes", "name", "type", "stream", "toxicity"]
    listed = api.get("/proxies/p/toxics").json()
    assert [t["name"] for t in listed] == [
        "nats_drop_upstream",
        "nats_delay_upstream",
        "latency_upstream",
        "nats_drop_downstream",
    ]
    assert "stats" not in listed[2] and "stats" in listed[0]


def test_update_merges_string_and_int_attributes(api: Api, sink: Upstream) -> None:
    api.create("p", sink.address)
    api.toxic("p", "nats_delay", stream="upstream", name="d", attributes={"delay": 300})
    response = api.post("/proxies/p/toxics/d", json={"attributes": {"frames": "nak"}})
    assert response.status_code == 200, response.text
    assert response.json()["attributes"] == {
        "frames": "nak",
        "subject": ">",
        "delay": 300,
        "jitter": 0,
    }


def _error(api: Api, body: dict, path: str = "/proxies/p/toxics") -> str:
    response = api.post(path, json=body)
    assert response.status_code == 400, (body, response.text)
    got = response.json()
    assert got["status"] == 400
    return got["error"]


def test_invalid_attributes_are_400s(api: Api, sink: Upstream) -> None:
    api.create("p", sink.address)
    drop = "bad request body: invalid nats_drop attributes: "
    delay = "bad request body: invalid nats_delay attributes: "
    for frames in ("ack", "nak", "term", "wpi", "acks"):
        message = _error(api, {"type": "nats_drop", "attributes": {"frames": frames}})
        assert message == (
            f"{drop}frames={frames} matches JetStream acks, which only clients send: use stream "
            "upstream (downstream only has frames=msg)"
        )
    assert _error(
        api, {"type": "nats_drop", "stream": "upstream", "attributes": {"frames": "x"}}
    ) == (f"{drop}frames must be one of ack, nak, term, wpi, acks, msg, not 'x'")
    up = {"type": "nats_drop", "stream": "upstream"}
    assert _error(api, {**up, "attributes": {"subject": ""}}) == f"{drop}subject must not be empty"
    assert _error(api, {**up, "attributes": {"subject": "a..b"}}) == (
        f"{drop}subject 'a..b' has an empty token"
    )
    assert _error(api, {**up, "attributes": {"subject": "a.>.b"}}) == (
        f"{drop}subject 'a.>.b': '>' must be the last token"
    )
    assert _error(api, {**up, "attributes": {"subject": "a*"}}) == (
        f"{drop}subject 'a*': wildcards must be whole tokens"
    )
    delayed = {"type": "nats_delay", "stream": "upstream"}
    assert _error(api, {**delayed, "attributes": {"delay": -1}}) == f"{delay}delay must be >= 0"
    assert _error(api, {**delayed, "attributes": {"jitter": -5}}) == f"{delay}jitter must be >= 0"
    # JSON types: strings are strings, ints are ints
    assert _error(api, {**up, "attributes": {"frames": 1}}).startswith("bad request body: json: ")
    assert _error(api, {**delayed, "attributes": {"delay": "300"}}).startswith(
        "bad request body: json: "
    )
    assert api.get("/proxies/p/toxics").json() == []


def test_update_is_validated_against_the_toxic_stream(api: Api, sink: Upstream) -> None:
    api.create("p", sink.address)
    api.toxic("p", "nats_drop", name="m", attributes={"frames": "msg"})
    message = _error(api, {"attributes": {"frames": "ack"}}, "/proxies/p/toxics/m")
    assert "only clients send" in message
    assert api.get("/proxies/p/toxics/m").json()["attributes"]["frames"] == "msg"


# -- the data path, byte for byte ------------------------------------------------------------------


def test_drop_acks_only_and_count(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    api.toxic("p", "nats_drop", stream="upstream", name="d")
    stream = PING + ACK + DATA + NAK + EMPTY_ACK + TERM + WPI + HACK + DATA
    kept = PING + DATA + NAK + TERM + WPI + DATA
    assert sent_through(port, sink, stream, len(kept)) == kept
    assert stats(api, "d") == {"frames": 9, "matched": 3, "acted": 3}


@pytest.mark.parametrize(
    ("frames", "subject", "dropped"),
    [
        ("nak", ">", [NAK]),
        ("term", ">", [TERM]),
        ("wpi", ">", [WPI]),
        ("acks", ">", [ACK, NAK, EMPTY_ACK, TERM, WPI, HACK]),
        ("acks", "$JS.ACK.OTHER.>", [WPI]),
        ("ack", "$JS.ACK.ORDERS.*.>", [ACK, EMPTY_ACK, HACK]),
        ("msg", "orders.*", [DATA]),
        ("msg", "$JS.ACK.*.*.1.9.>", [NAK]),
    ],
)
def test_frame_selection(
    api: Api, sink: Upstream, frames: str, subject: str, dropped: list[bytes]
) -> None:
    port = api.create("p", sink.address)
    attributes = {"frames": frames, "subject": subject}
    api.toxic("p", "nats_drop", stream="upstream", name="d", attributes=attributes)
    frames_sent = [PING, ACK, DATA, NAK, EMPTY_ACK, TERM, WPI, HACK]
    kept = b"".join(f for f in frames_sent if f not in dropped)
    assert sent_through(port, sink, b"".join(frames_sent), len(kept)) == kept
    assert stats(api, "d")["acted"] == len(dropped)


def test_downstream_msg_drop_by_subject(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "nats_drop", name="d", attributes={"frames": "msg", "subject": "orders.*.eu"})
    msgs = [
        b"MSG orders.1.eu 1 2\r\nm1\r\n",
        b"MSG orders.1.us 1 2\r\nm2\r\n",
        b"HMSG orders.2.eu 1 12 14\r\nNATS/1.0\r\n\r\nm3\r\n",
        b"MSG orders.2.eu.x 1 _INBOX.z 2\r\nm4\r\n",
        b"PING\r\n",
    ]
    kept = msgs[1] + msgs[3] + msgs[4]
    with connect(port) as sock:
        sock.sendall(b"".join(msgs))
        assert recv_exactly(sock, len(kept)) == kept
    assert stats(api, "d") == {"frames": 5, "matched": 2, "acted": 2}


def test_toxicity_zero_parses_and_never_acts(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    api.toxic("p", "nats_drop", stream="upstream", name="d", toxicity=0)
    stream = (ACK + DATA) * 50
    assert sent_through(port, sink, stream, len(stream)) == stream
    assert stats(api, "d") == {"frames": 100, "matched": 50, "acted": 0}


def test_toxicity_is_a_per_frame_probability(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    api.toxic("p", "nats_drop", stream="upstream", name="d", toxicity=0.5)
    count = 1000
    stream = ACK * count
    with connect(port) as sock:
        sock.sendall(stream)
        assert eventually(lambda: stats(api, "d")["matched"] == count)
    got = stats(api, "d")
    # binomial(1000, 0.5): sd 15.8; 5 sd either side
    assert 420 <= got["acted"] <= 580, got
    peer = sink.wait_peer()
    assert eventually(lambda: len(peer.received) == (count - got["acted"]) * len(ACK))
    assert bytes(peer.received) == ACK * (count - got["acted"])


def test_delay_reorders_whole_frames_and_others_keep_flowing(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    attributes = {"frames": "msg", "subject": "slow.>", "delay": 300}
    api.toxic("p", "nats_delay", stream="upstream", name="d", attributes=attributes)
    slow = b"PUB slow.1 4\r\nslow\r\n"
    fast = b"PUB fast 4\r\nfast\r\n"
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(slow + fast + PING)
        peer = sink.wait_peer()
        assert eventually(lambda: len(peer.received) >= len(fast + PING), 1.0)
        early = time.monotonic() - start
        assert bytes(peer.received) == fast + PING and early < 0.2, early
        assert eventually(lambda: len(peer.received) == len(slow + fast + PING), 2.0)
        late = time.monotonic() - start
    assert bytes(peer.received) == fast + PING + slow
    assert 0.28 <= late <= 0.6, late
    assert stats(api, "d") == {"frames": 3, "matched": 1, "acted": 1}


def test_removing_a_delay_delivers_held_frames_and_partial_tail(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    api.toxic("p", "nats_delay", stream="upstream", name="d", attributes={"delay": 60000})
    with connect(port) as sock:
        sock.sendall(DATA + ACK + DATA + b"PUB partial 10\r\n0123")
        peer = sink.wait_peer()
        assert eventually(lambda: len(peer.received) == 2 * len(DATA))
        time.sleep(0.1)
        assert bytes(peer.received) == DATA + DATA  # ack held, partial frame buffered
        assert api.delete("/proxies/p/toxics/d").status_code == 204
        rest = b"456789\r\n" + ACK
        sock.sendall(rest)
        expected = DATA + DATA + ACK + b"PUB partial 10\r\n0123" + rest
        assert eventually(lambda: len(peer.received) == len(expected), 2.0)
    assert bytes(peer.received) == expected


def test_update_mid_frame_keeps_the_parser_state(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    api.toxic("p", "nats_drop", stream="upstream", name="d", toxicity=0)
    with connect(port) as sock:
        sock.sendall(DATA + ACK[:30])
        peer = sink.wait_peer()
        assert eventually(lambda: len(peer.received) == len(DATA))
        response = api.post("/proxies/p/toxics/d", json={"toxicity": 1})
        assert response.status_code == 200
        api.toxic("p", "latency", stream="upstream", name="after")  # restarts d again
        sock.sendall(ACK[30:] + DATA)
        assert eventually(lambda: len(peer.received) == 2 * len(DATA))
        time.sleep(0.1)
    assert bytes(peer.received) == DATA + DATA  # the ack split across the update was dropped
    assert stats(api, "d")["acted"] == 1


def test_added_mid_frame_it_seeks_a_frame_start_first(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    with connect(port) as sock:
        sock.sendall(b"PUB big 10\r\n01234")
        peer = sink.wait_peer()
        assert eventually(lambda: len(peer.received) == 17)
        attributes = {"frames": "msg"}
        api.toxic("p", "nats_drop", stream="upstream", name="d", attributes=attributes)
        # this read starts mid-frame: passed on untouched, nothing dropped
        first = b"56789\r\nPUB b 1\r\nx\r\n"
        sock.sendall(first)
        assert eventually(lambda: len(peer.received) == 17 + len(first))
        time.sleep(0.05)
        # the next read starts at a frame: aligned on its first frame, then PUBs are dropped
        sock.sendall(b"PUB c 1\r\ny\r\nPUB d 1\r\nz\r\nPING\r\n")
        assert eventually(lambda: bytes(peer.received).endswith(PING))
        time.sleep(0.05)
    assert bytes(peer.received) == (
        b"PUB big 10\r\n01234" + first + b"PUB c 1\r\ny\r\n" + b"PING\r\n"
    )
    assert stats(api, "d")["acted"] == 1


def test_garbage_switches_the_link_to_pass_through(api: Api, sink: Upstream) -> None:
    port = api.create("p", sink.address)
    api.toxic("p", "nats_drop", stream="upstream", name="d")
    stream = ACK + b"GET / HTTP/1.1\r\n\r\n" + ACK + DATA
    expected = stream[len(ACK) :]
    assert sent_through(port, sink, stream, len(expected)) == expected
    assert stats(api, "d")["acted"] == 1
