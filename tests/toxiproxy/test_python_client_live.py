"""toxiproxy-python 0.1.1 end to end against the embedded server (what the harness drives)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from tests.toxiproxy.helpers import Api, ServerThread, Upstream, connect, free_port, round_trip

pytestmark = pytest.mark.live


@pytest.fixture
def toxiproxy(server: ServerThread, api: Api) -> Iterator[Toxiproxy]:
    """A client pointed at our server; the class-level host/port is restored afterwards."""
    saved = APIConsumer.host, APIConsumer.port
    client = Toxiproxy()
    client.update_api_consumer("127.0.0.1", server.server.port)
    yield client
    APIConsumer.host, APIConsumer.port = saved


def test_running_and_version(toxiproxy: Toxiproxy) -> None:
    assert toxiproxy.running()
    assert b'"2.12.0"' in toxiproxy.version()


def test_create_list_and_duplicate(toxiproxy: Toxiproxy, echo: Upstream) -> None:
    proxy = toxiproxy.create(upstream=echo.address, name="client_echo")
    assert proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:")
    assert set(toxiproxy.proxies()) == {"client_echo"}
    assert toxiproxy.get_proxy("client_echo").upstream == echo.address
    with pytest.raises(ProxyExists):
        toxiproxy.create(upstream=echo.address, name="client_echo")
    with connect(int(proxy.listen.rsplit(":", 1)[1])) as sock:
        assert round_trip(sock) < 0.05


def test_duplicate_is_409_on_the_wire(toxiproxy: Toxiproxy, echo: Upstream) -> None:
    body = {"name": "d", "upstream": echo.address, "listen": "127.0.0.1:0"}
    assert APIConsumer.post("/proxies", json=body).status_code == 201
    with pytest.raises(ProxyExists):
        APIConsumer.post("/proxies", json=body)


def test_disabled_proxy_echoes_listen_string(toxiproxy: Toxiproxy, echo: Upstream) -> None:
    listen = f"127.0.0.1:{free_port()}"
    proxy = toxiproxy.create(upstream=echo.address, name="off", listen=listen, enabled=False)
    assert proxy.listen == listen and proxy.enabled is False


def test_toxics_add_list_remove(toxiproxy: Toxiproxy, echo: Upstream) -> None:
    proxy = toxiproxy.create(upstream=echo.address, name="tox")
    proxy.add_toxic(type="latency", attributes={"latency": 40})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="bw", attributes={"rate": 1000})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "bw"}
    assert toxics["latency_downstream"].attributes == {"latency": 40, "jitter": 0}
    assert toxics["bw"].stream == "upstream"
    assert proxy.get_toxic("bw").type == "bandwidth"
    with connect(int(proxy.listen.rsplit(":", 1)[1])) as sock:
        assert round_trip(sock) >= 0.030
        assert proxy.destroy_toxic("latency_downstream") is True
        proxy.destroy_toxic("bw")
        assert proxy.toxics() == {}
        assert round_trip(sock) < 0.030


def test_exception_mapping(toxiproxy: Toxiproxy, echo: Upstream) -> None:
    proxy = toxiproxy.create(upstream=echo.address, name="ex")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", stream="lolstream")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="down")
    proxy.add_toxic(type="latency")
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency")
    with pytest.raises(NotFound):
        APIConsumer.get("/not_found")
    with pytest.raises(NotFound):
        proxy.destroy_toxic("missing")


def test_disable_refuses_and_enable_reuses_the_port(toxiproxy: Toxiproxy, echo: Upstream) -> None:
    proxy = toxiproxy.create(upstream=echo.address, name="flap")
    port = int(proxy.listen.rsplit(":", 1)[1])
    for _ in range(3):  # a flapping fault: down/up repeatedly on the same port
        with proxy.down():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2)
            assert toxiproxy.get_proxy("flap").enabled is False
        with connect(port) as sock:  # checked with a real connect, not the client's return
            assert round_trip(sock) < 0.05
    assert toxiproxy.get_proxy("flap").enabled is True


def test_reset_brings_disabled_proxies_up_without_toxics(
    toxiproxy: Toxiproxy, echo: Upstream
) -> None:
    proxy = toxiproxy.create(upstream=echo.address, name="r")
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    proxy.disable()
    assert toxiproxy.reset() is True
    again = toxiproxy.get_proxy("r")
    assert again.enabled is True
    assert again.toxics() == {}
    with connect(int(again.listen.rsplit(":", 1)[1])) as sock:
        assert round_trip(sock) < 0.05


def test_client_populate_and_destroy(toxiproxy: Toxiproxy, echo: Upstream) -> None:
    listen = f"127.0.0.1:{free_port()}"
    created = toxiproxy.populate([{"name": "pop", "upstream": echo.address, "listen": listen}])
    assert [p.name for p in created] == ["pop"]
    assert toxiproxy.populate([{"name": "pop", "upstream": echo.address, "listen": listen}]) == []
    assert toxiproxy.destroy(toxiproxy.get_proxy("pop")) is True
    assert toxiproxy.proxies() == {}
