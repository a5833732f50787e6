"""API contract with raw HTTP: every endpoint, status code and error body of the spec (§1)."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.toxiproxy.helpers import HOST, Api, Upstream, connect, free_port, is_open, port_of

pytestmark = pytest.mark.live


def err(response: requests.Response) -> dict:
    assert response.text.endswith("\n")
    return response.json()


# -- general rules -------------------------------------------------------------------------------


def test_version_is_exact_json(api: Api) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.text == '{"version": "2.12.0"}\n'
    assert response.headers["Content-Type"] == "application/json;charset=utf-8"


def test_unknown_path_and_trailing_slash_are_plain_404(api: Api) -> None:
    for path in ("/not_found", "/proxies/", "/proxies/a/b/c/d/e"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.text == "404 page not found\n"
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_wrong_method_is_empty_405(api: Api) -> None:
    for method, path in [("PUT", "/proxies"), ("DELETE", "/version"), ("GET", "/reset")]:
        response = api.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.content == b""


def test_browser_user_agent_is_refused(api: Api) -> None:
    response = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert response.status_code == 403
    assert response.text == "User agent not allowed\n"
    assert api.get("/proxies", headers={"User-Agent": "curl/8.5.0"}).status_code == 200


def test_request_id_header(api: Api) -> None:
    assert len(api.get("/proxies").headers["X-Toxiproxy-Request-Id"]) == 20


def test_metrics_is_404_unless_enabled(api: Api) -> None:
    response = api.get("/metrics")
    assert response.status_code == 404
    assert response.text == "404 page not found\n"


# -- proxies -------------------------------------------------------------------------------------


def test_create_resolves_listen_and_lists_by_name(api: Api, echo: Upstream) -> None:
    assert api.get("/proxies").json() == {}
    response = api.post(
        "/proxies", json={"name": "b", "listen": "localhost:0", "upstream": echo.address}
    )
    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert body["name"] == "b" and body["upstream"] == echo.address
    assert body["enabled"] is True and body["toxics"] == []
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    api.create("a", echo.address)
    listing = api.get("/proxies").json()
    assert list(listing) == ["a", "b"]
    assert listing["b"] == body
    assert api.get("/proxies/b").json() == body


def test_create_errors(api: Api, echo: Upstream) -> None:
    cases = [
        (b"", 400, "bad request body: EOF"),
        (b"   \n", 400, "bad request body: EOF"),
        (b'{"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"}', 400, None),
        (b'{"upstream": "127.0.0.1:1"}', 400, "missing required field: name"),
        (b'{"name": "x"}', 400, "missing required field: upstream"),
        (b'{"name": "x", "upstream": ""}', 400, "missing required field: upstream"),
        (b"[1, 2]", 400, None),
        (b"{nope", 400, None),
    ]
    for raw, status, message in cases:
        response = api.post("/proxies", data=raw)
        assert response.status_code == status, raw
        body = err(response)
        assert body["status"] == status
        if message is None:
            assert body["error"].startswith("bad request body: "), body
        else:
            assert body["error"] == message
    assert api.get("/proxies").json() == {}


def test_create_duplicate_is_409_and_bind_failure_is_500(api: Api, echo: Upstream) -> None:
    api.create("dup", echo.address)
    response = api.post("/proxies", json={"name": "dup", "upstream": echo.address})
    assert response.status_code == 409
    assert err(response) == {"error": "proxy already exists", "status": 409}
    with socket.create_server((HOST, 0)) as busy:
        port = busy.getsockname()[1]
        response = api.post(
            "/proxies",
            json={"name": "busy", "listen": f"{HOST}:{port}", "upstream": echo.address},
        )
    assert response.status_code == 500
    body = err(response)
    assert body["status"] == 500
    assert body["error"] == f"listen tcp {HOST}:{port}: bind: address already in use"
    assert api.get("/proxies/busy").status_code == 404  # a proxy that fails to start is not added


def test_json_decoding_follows_go(api: Api, echo: Upstream) -> None:
    raw = (
        b'{"NAME": "ci", "Upstream": "' + echo.address.encode() + b'", "listen": "127.0.0.1:0",'
        b' "unknown": [1], "enabled": null} trailing garbage'
    )
    response = api.post("/proxies", data=raw)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "ci"
    assert response.json()["enabled"] is True


def test_created_disabled_keeps_literal_listen_until_enabled(api: Api, echo: Upstream) -> None:
    port = free_port()
    response = api.post(
        "/proxies",
        json={
            "name": "off",
            "listen": f"localhost:{port}",
            "upstream": echo.address,
            "enabled": False,
        },
    )
    assert response.status_code == 201
    assert response.json()["listen"] == f"localhost:{port}"
    assert response.json()["enabled"] is False
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=2)
    response = api.post("/proxies/off", json={"enabled": True})
    assert response.status_code == 200
    assert response.json()["listen"] == f"127.0.0.1:{port}"
    connect(port).close()


def test_get_update_delete_unknown_proxy_is_404(api: Api) -> None:
    expected = {"error": "proxy not found", "status": 404}
    for method in ("GET", "POST", "PATCH", "DELETE"):
        response = api.request(method, "/proxies/ghost", json={"enabled": False})
        assert response.status_code == 404, method
        assert err(response) == expected
    assert err(api.get("/proxies/ghost/toxics")) == expected
    assert err(api.post("/proxies/ghost/toxics", json={"type": "latency"})) == expected
    assert err(api.get("/proxies/ghost/toxics/t")) == expected
    assert err(api.delete("/proxies/ghost/toxics/t")) == expected


def test_partial_update_keeps_omitted_fields(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.toxic("p", "latency", attributes={"latency": 5})
    for method in ("POST", "PATCH"):
        response = api.request(method, "/proxies/p", json={"enabled": False})
        assert response.status_code == 200
        body = response.json()
        assert body["enabled"] is False
        assert body["listen"] == f"127.0.0.1:{port}" and body["upstream"] == echo.address
        assert [t["name"] for t in body["toxics"]] == ["latency_downstream"]
        response = api.request(method, "/proxies/p", json={"enabled": True, "name": "renamed"})
        assert response.json()["enabled"] is True and response.json()["name"] == "p"
        assert response.json()["listen"] == f"127.0.0.1:{port}"


def test_update_bad_body_is_400(api: Api, echo: Upstream) -> None:
    api.create("p", echo.address)
    response = api.post("/proxies/p", data=b"")
    assert response.status_code == 400
    assert err(response) == {"error": "bad request body: EOF", "status": 400}
    response = api.patch("/proxies/p", json={"enabled": "false"})
    assert response.status_code == 400
    assert api.get("/proxies/p").json()["enabled"] is True


def test_update_localhost_equals_loopback_and_keeps_connections(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    client = connect(port)
    client.sendall(b"x")
    assert client.recv(1) == b"x"
    response = api.post("/proxies/p", json={"listen": f"localhost:{port}"})
    assert response.status_code == 200
    assert response.json()["listen"] == f"127.0.0.1:{port}"
    client.sendall(b"y")
    assert client.recv(1) == b"y"  # no restart: the live connection survived
    client.close()


def test_update_listen_restarts_and_keeps_toxics(api: Api, echo: Upstream) -> None:
    old = api.create("p", echo.address)
    api.toxic("p", "latency", attributes={"latency": 1})
    client = connect(old)
    client.sendall(b"x")
    assert client.recv(1) == b"x"
    new = free_port()
    response = api.post("/proxies/p", json={"listen": f"{HOST}:{new}"})
    assert response.status_code == 200
    assert port_of(response.json()["listen"]) == new
    assert len(response.json()["toxics"]) == 1
    assert not is_open(client, 1.0)  # its connections were dropped
    connect(new).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, old), timeout=2)


def test_update_to_unparsable_listen_is_500(api: Api, echo: Upstream) -> None:
    api.create("p", echo.address)
    response = api.post("/proxies/p", json={"listen": "no-port-here"})
    assert response.status_code == 500
    assert "missing port" in err(response)["error"]


def test_delete_closes_listener_and_connections(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    client = connect(port)
    client.sendall(b"x")
    assert client.recv(1) == b"x"
    response = api.delete("/proxies/p")
    assert response.status_code == 204 and response.content == b""
    assert not is_open(client, 1.0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=2)
    assert api.delete("/proxies/p").status_code == 404


# -- toxics --------------------------------------------------------------------------------------


def test_toxic_defaults_and_every_type(api: Api, echo: Upstream) -> None:
    api.create("p", echo.address)
    assert api.get("/proxies/p/toxics").json() == []
    expected = {
        "latency": {"latency": 0, "jitter": 0},
        "bandwidth": {"rate": 0},
        "slow_close": {"delay": 0},
        "timeout": {"timeout": 0},
        "reset_peer": {"timeout": 0},
        "limit_data": {"bytes": 0},
        "noop": {},
    }
    for kind, attributes in expected.items():
        response = api.post("/proxies/p/toxics", json={"type": kind, "toxicity": 0})
        assert response.status_code == 200, response.text
        body = response.json()
        assert list(body) == ["attributes", "name", "type", "stream", "toxicity"]
        assert body == {
            "attributes": attributes,
            "name": f"{kind}_downstream",
            "type": kind,
            "stream": "downstream",
            "toxicity": 0,
        }
    response = api.post(
        "/proxies/p/toxics", json={"type": "slicer", "attributes": {"average_size": 10}}
    )
    assert response.json()["attributes"] == {"average_size": 10, "size_variation": 0, "delay": 0}
    assert response.json()["toxicity"] == 1
    assert len(api.get("/proxies/p/toxics").json()) == 8


def test_toxic_stream_is_case_insensitive_and_echoed(api: Api, echo: Upstream) -> None:
    api.create("p", echo.address)
    body = api.toxic("p", "latency", stream="UpStream")
    assert body["stream"] == "UpStream" and body["name"] == "latency_UpStream"
    body = api.toxic("p", "latency", stream="downstream", name="")
    assert body["name"] == "latency_downstream"


def test_toxic_create_errors_in_order(api: Api, echo: Upstream) -> None:
    api.create("p", echo.address)
    api.toxic("p", "latency", stream="upstream", name="taken")

    def check(body: object, status: int, message: str | None, raw: bytes | None = None) -> None:
        if raw is None:
            response = api.post("/proxies/p/toxics", json=body)
        else:
            response = api.post("/proxies/p/toxics", data=raw)
        assert response.status_code == status, (body, raw, response.text)
        got = err(response)
        assert got["status"] == status
        if message is None:
            assert got["error"].startswith("bad request body: "), got
        else:
            assert got["error"] == message

    stream_error = "stream was invalid, can be either upstream or downstream"
    check(None, 400, "bad request body: EOF", raw=b"")
    check({"type": "latency", "toxicity": "1"}, 400, None)
    check({"type": "latency", "stream": ""}, 400, stream_error)
    check({"type": "latency", "stream": "lolstream"}, 400, stream_error)
    check({"type": "down"}, 400, "invalid toxic type")
    check({"stream": "sideways"}, 400, stream_error)  # stream is checked before type
    check({}, 400, "invalid toxic type")
    # names are unique across both streams; checked before attribute types
    exists = "toxic already exists"
    check({"type": "latency", "name": "taken", "attributes": {"latency": "x"}}, 409, exists)
    check({"type": "latency", "name": "taken"}, 409, "toxic already exists")
    check({"type": "latency", "attributes": {"latency": "10"}}, 400, None)
    check({"type": "latency", "attributes": []}, 400, None)
    check(None, 400, None, raw=b'{"type": "latency", "attributes": {"latency": 1.5}}')
    check(None, 400, None, raw=b'{"type": "latency", "attributes": {"latency": 1e3}}')
    check({"type": "bandwidth", "attributes": {"rate": -1}}, 400, None)
    check({"type": "slicer", "attributes": {"average_size": 0}}, 400, None)
    check({"type": "slicer", "attributes": {"average_size": 10, "size_variation": 11}}, 400, None)
    assert [t["name"] for t in api.get("/proxies/p/toxics").json()] == ["taken"]


def test_toxic_ordering_upstream_first_then_creation_order(api: Api, echo: Upstream) -> None:
    api.create("p", echo.address)
    for name, stream in [("d1", "downstream"), ("u1", "upstream"), ("d2", "downstream")]:
        api.toxic("p", "noop", stream=stream, name=name)
    api.toxic("p", "noop", stream="upstream", name="u2")
    names = [t["name"] for t in api.get("/proxies/p/toxics").json()]
    assert names == ["u1", "u2", "d1", "d2"]
    assert [t["name"] for t in api.get("/proxies/p").json()["toxics"]] == names


def test_toxic_get_update_delete(api: Api, echo: Upstream) -> None:
    api.create("p", echo.address)
    api.toxic("p", "latency", name="lat", attributes={"latency": 100, "jitter": 7})
    assert api.get("/proxies/p/toxics/lat").json()["attributes"] == {"latency": 100, "jitter": 7}
    missing = api.get("/proxies/p/toxics/nope")
    assert missing.status_code == 404
    assert err(missing) == {"error": "toxic not found", "status": 404}
    response = api.post("/proxies/p/toxics/lat", json={"attributes": {"latency": 1000}})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"latency": 1000, "jitter": 7}  # merged
    assert response.json()["toxicity"] == 1
    response = api.patch(
        "/proxies/p/toxics/lat",
        json={"toxicity": 0.5, "name": "renamed", "type": "timeout", "stream": "upstream"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["toxicity"] == 0.5 and body["name"] == "lat"
    assert body["type"] == "latency" and body["stream"] == "downstream"
    assert body["attributes"] == {"latency": 1000, "jitter": 7}
    assert api.post("/proxies/p/toxics/lat", data=b"").status_code == 400
    bad = api.post("/proxies/p/toxics/lat", json={"attributes": {"jitter": 0.5}})
    assert bad.status_code == 400
    assert api.get("/proxies/p/toxics/lat").json()["attributes"]["jitter"] == 7
    assert api.post("/proxies/p/toxics/nope", json={}).status_code == 404
    response = api.delete("/proxies/p/toxics/lat")
    assert response.status_code == 204 and response.content == b""
    assert api.delete("/proxies/p/toxics/lat").status_code == 404
    assert api.get("/proxies/p/toxics").json() == []


def test_toxic_update_validates_merged_attributes(api: Api, echo: Upstream) -> None:
    api.create("p", echo.address)
    api.toxic("p", "slicer", name="s", attributes={"average_size": 10, "size_variation": 5})
    response = api.post("/proxies/p/toxics/s", json={"attributes": {"average_size": 4}})
    assert response.status_code == 400
    assert "size_variation" in err(response)["error"]
    assert api.post("/proxies/p/toxics/s", json={"attributes": {"delay": 3}}).status_code == 200


# -- populate and reset --------------------------------------------------------------------------


def test_populate_creates_in_order(api: Api, echo: Upstream) -> None:
    body = [
        {"name": "z", "listen": "127.0.0.1:0", "upstream": echo.address},
        {"name": "a", "listen": "127.0.0.1:0", "upstream": echo.address, "enabled": False},
        {"name": "m", "listen": "127.0.0.1:0", "upstream": echo.address, "enabled": None},
    ]
    response = api.post("/populate", json=body)
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [p["name"] for p in proxies] == ["z", "a", "m"]
    assert [p["enabled"] for p in proxies] == [True, False, True]
    assert all(p["toxics"] == [] for p in proxies)


def test_populate_empty_array_gives_empty_list(api: Api) -> None:
    response = api.post("/populate", json=[])
    assert response.status_code == 201
    assert response.json() == {"proxies": []}  # deliberate deviation: Go says null


def test_populate_checks_everything_first(api: Api, echo: Upstream) -> None:
    body = [
        {"name": "ok", "upstream": echo.address, "listen": "127.0.0.1:0"},
        {"upstream": echo.address},
    ]
    response = api.post("/populate", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": "missing required field: name at proxy 2",
        "status": 400,
        "proxies": None,
    }
    body[1] = {"name": "x"}
    assert api.post("/populate", json=body).json()["error"] == (
        "missing required field: upstream at proxy 2"
    )
    assert api.get("/proxies").json() == {}
    for raw in (b"", b'{"name": "x"}', b'[{"name": 1}]'):
        response = api.post("/populate", data=raw)
        assert response.status_code == 400, raw
        assert response.json()["proxies"] is None
        assert response.json()["error"].startswith("bad request body: ")


def test_populate_keeps_unchanged_and_replaces_changed(api: Api, echo: Upstream) -> None:
    other = Upstream("echo")
    try:
        same_port = api.create("same", echo.address)
        api.create("changed", echo.address)
        api.create("untouched", echo.address)
        api.toxic("same", "latency", attributes={"latency": 1})
        api.toxic("changed", "latency", attributes={"latency": 1})
        api.post("/proxies/same", json={"enabled": False})
        client = connect(api.create("live", echo.address))
        api.toxic("live", "noop")
        client.sendall(b"x")
        assert client.recv(1) == b"x"
        live = api.get("/proxies/live").json()
        body = [
            {"name": "same", "listen": f"localhost:{same_port}", "upstream": echo.address},
            {"name": "changed", "listen": "127.0.0.1:0", "upstream": other.address},
            {"name": "live", "listen": live["listen"], "upstream": echo.address},
        ]
        response = api.post("/populate", json=body)
        assert response.status_code == 201
        same, changed, live_after = response.json()["proxies"]
        assert same["enabled"] is False  # the request's enabled is ignored when unchanged
        assert len(same["toxics"]) == 1
        assert changed["upstream"] == other.address and changed["toxics"] == []
        assert live_after == live
        client.sendall(b"y")
        assert client.recv(1) == b"y"  # its live connection was kept
        assert "untouched" in api.get("/proxies").json()
        client.close()
    finally:
        other.close()


def test_populate_bind_error_is_not_rolled_back(api: Api, echo: Upstream) -> None:
    with socket.create_server((HOST, 0)) as busy:
        port = busy.getsockname()[1]
        body = [
            {"name": "first", "listen": "127.0.0.1:0", "upstream": echo.address},
            {"name": "second", "listen": f"{HOST}:{port}", "upstream": echo.address},
            {"name": "third", "listen": "127.0.0.1:0", "upstream": echo.address},
        ]
        response = api.post("/populate", json=body)
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500 and "address already in use" in body["error"]
    assert [p["name"] for p in body["proxies"]] == ["first"]
    assert list(api.get("/proxies").json()) == ["first"]


def test_reset_enables_and_removes_toxics(api: Api, echo: Upstream) -> None:
    port = api.create("p", echo.address)
    api.create("q", echo.address)
    api.toxic("p", "latency", attributes={"latency": 10})
    api.toxic("q", "timeout", stream="upstream")
    api.post("/proxies/p", json={"enabled": False})
    response = api.post("/reset", data=b"ignored")
    assert response.status_code == 204 and response.content == b""
    proxies = api.get("/proxies").json()
    assert proxies["p"]["enabled"] is True and port_of(proxies["p"]["listen"]) == port
    assert proxies["p"]["toxics"] == [] and proxies["q"]["toxics"] == []
    connect(port).close()


def test_hostile_bodies_are_400_not_crashes(api: Api, echo: Upstream) -> None:
    api.create("p", echo.address)
    for raw in (b"[" * 100_000, b"\xff\xfe", b'{"type": "latency", "toxicity": NaN}'):
        response = api.post("/proxies/p/toxics", data=raw)
        assert response.status_code == 400, raw[:20]
        assert err(response)["error"].startswith("bad request body: ")
    huge = {"type": "latency", "attributes": {"latency": 2**64}}
    assert api.post("/proxies/p/toxics", json=huge).status_code == 400  # beyond int64
    assert api.get("/version").status_code == 200
