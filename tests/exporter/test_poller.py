"""The poller keeps each endpoint's latest answer; a failing endpoint is None with its reason,
and an unhealthy /healthz (503 with a JSON status) is still an answer."""

from __future__ import annotations

import httpx

from harness.exporter.poller import PATHS, Poller


def handler(request: httpx.Request) -> httpx.Response:
    path = request.url.raw_path.decode()
    if path == "/varz":
        return httpx.Response(200, json={"server_name": "harness-n1", "connections": 3})
    if path == "/routez":
        return httpx.Response(200, json={"num_routes": 0, "routes": []})
    if path == "/healthz":
        return httpx.Response(503, json={"status": "unavailable", "error": "not current"})
    raise httpx.ConnectError("refused", request=request)


def test_poll_once() -> None:
    poller = Poller("harness-n1", "http://127.0.0.1:8222/")
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        snapshot = poller.poll_once(client)
    assert snapshot.varz == {"server_name": "harness-n1", "connections": 3}
    assert snapshot.routez == {"num_routes": 0, "routes": []}
    assert snapshot.healthz == {"status": "unavailable", "error": "not current"}
    assert snapshot.jsz is None and "ConnectError" in snapshot.errors["jsz"]
    assert poller.snapshot() is snapshot
    assert PATHS["jsz"] == "/jsz?consumers=true&config=true&raft=true"  # the official -jsz=all
