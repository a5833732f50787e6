"""ToxiproxyClient: each client talks to its own server only; the library's class-level
host/port (`toxiproxy.api.APIConsumer`) is never changed, even with calls interleaved."""

from __future__ import annotations

import anyio
import httpx
import pytest
from toxiproxy.api import APIConsumer

from harness.stack.ports import free_port
from harness.toxiproxy_client import ToxiproxyClient, ToxiproxyError
from harness.toxiproxy_server.server import ToxiproxyServer

pytestmark = [pytest.mark.live, pytest.mark.anyio]


async def test_two_clients_two_servers_never_cross(anyio_backend: str) -> None:
    default = (APIConsumer.host, APIConsumer.port)
    async with (
        ToxiproxyServer("127.0.0.1", 0) as server_a,
        ToxiproxyServer("127.0.0.1", 0) as server_b,
        httpx.AsyncClient(timeout=5) as http,
    ):
        assert server_a.port != server_b.port
        for server, name in ((server_a, "only_a"), (server_b, "only_b")):
            body = {"name": name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}
            assert (await http.post(f"{server.url}/proxies", json=body)).status_code == 201

        client_a = ToxiproxyClient(server_a.url)
        client_b = ToxiproxyClient(server_b.url)
        assert (APIConsumer.host, APIConsumer.port) == default

        assert set(await client_a.proxies()) == {"only_a"}
        assert set(await client_b.proxies()) == {"only_b"}

        async def add(client: ToxiproxyClient, proxy: str, i: int) -> None:
            await client.add_toxic(
                proxy,
                name=f"{proxy}_t{i}",
                type="latency",
                stream="downstream",
                toxicity=1.0,
                attributes={"latency": i},
            )
            assert (APIConsumer.host, APIConsumer.port) == default

        async with anyio.create_task_group() as tg:  # interleaved on worker threads
            for i in range(10):
                tg.start_soon(add, client_a, "only_a", i)
                tg.start_soon(add, client_b, "only_b", i)

        # Each server holds exactly its own client's toxics, read independently of the client.
        raw_a = (await http.get(f"{server_a.url}/proxies")).json()
        raw_b = (await http.get(f"{server_b.url}/proxies")).json()
        assert set(raw_a) == {"only_a"} and set(raw_b) == {"only_b"}
        assert sorted(t["name"] for t in raw_a["only_a"]["toxics"]) == sorted(
            f"only_a_t{i}" for i in range(10)
        )
        assert sorted(t["name"] for t in raw_b["only_b"]["toxics"]) == sorted(
            f"only_b_t{i}" for i in range(10)
        )

        # A client for a third target, made later, changes neither the others nor the library.
        third = ToxiproxyClient(f"http://127.0.0.1:{free_port('127.0.0.1')}")
        with pytest.raises(ToxiproxyError, match=third.url.replace(".", r"\.")):
            await third.version()
        await client_a.reset()
        assert (await client_a.toxics("only_a")) == []
        assert len(await client_b.toxics("only_b")) == 10, "reset on A must not touch B"
        assert (APIConsumer.host, APIConsumer.port) == default


async def test_errors_name_the_clients_own_server(anyio_backend: str) -> None:
    async with ToxiproxyServer("127.0.0.1", 0) as server:
        client = ToxiproxyClient(server.url)
        with pytest.raises(ToxiproxyError) as raised:
            await client.toxics("no_such_proxy")
        assert f"GET {server.url}/proxies/no_such_proxy/toxics" in str(raised.value)
        assert "proxy not found" in str(raised.value)
