"""The in-process entry point (`async with ToxiproxyServer(...)`) on the standard asyncio loop."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from harness.toxiproxy_server.server import ToxiproxyServer

pytestmark = [pytest.mark.live, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_embedded_server_proxies_and_closes_everything() -> None:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    echo_port = echo.sockets[0].getsockname()[1]
    async with ToxiproxyServer("127.0.0.1", 0, seed=5) as server:
        assert server.port > 0
        async with aiohttp.ClientSession(server.url) as http:
            body = {"name": "e", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_port}"}
            async with http.post("/proxies", json=body) as response:
                assert response.status == 201
                port = int((await response.json())["listen"].rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello")
            assert await reader.readexactly(5) == b"hello"
            toxic = {"type": "latency", "attributes": {"latency": 50}}
            async with http.post("/proxies/e/toxics", json=toxic) as response:
                assert response.status == 200
            loop = asyncio.get_running_loop()
            start = loop.time()
            writer.write(b"again")
            assert await reader.readexactly(5) == b"again"
            assert 0.040 <= loop.time() - start <= 0.5
    # leaving the context closed the listener and the live connection
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)
    echo.close()
