"""The embedded Toxiproxy-compatible server: in-process (`ToxiproxyServer`) or `serve()`."""

from __future__ import annotations

import asyncio
import pathlib
import signal
from types import TracebackType

import structlog
from aiohttp import web

from harness.toxiproxy_server import jsonbody
from harness.toxiproxy_server.api import build_app
from harness.toxiproxy_server.collection import PopulateError, ProxyCollection
from harness.toxiproxy_server.errors import ApiError
from harness.toxiproxy_server.logs import configure_logging
from harness.toxiproxy_server.metrics import ProxyMetrics

log = structlog.get_logger("toxiproxy.server")


class ToxiproxyServer:
    """The API plus its proxies on the running event loop; `async with` closes everything."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        *,
        config: pathlib.Path | None = None,
        seed: int | None = None,
        proxy_metrics: bool = False,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.config = config
        self.metrics = ProxyMetrics() if proxy_metrics else None
        self.collection = ProxyCollection(seed=seed, metrics=self.metrics)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Apply the config file (as `-config` does), then serve the API."""
        if self.config is not None:
            await self.load_config(self.config)
        runner = web.AppRunner(
            build_app(self.collection, self.metrics), access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.requested_port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            await self.collection.close()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("api_listening", host=self.host, port=self.port, version="2.12.0")

    async def load_config(self, path: pathlib.Path) -> None:
        """Populate from a JSON file; like the real server, a bad file is logged, not fatal."""
        try:
            raw = await asyncio.to_thread(path.read_bytes)
            proxies = await self.collection.populate(jsonbody.decode(raw))
        except OSError as exc:
            log.error("config_unreadable", config=str(path), error=str(exc))
        except ApiError as exc:
            log.error("config_populate_failed", config=str(path), error=exc.message)
        except PopulateError as exc:
            log.error("config_populate_failed", config=str(path), error=exc.error.message)
        else:
            log.info("config_populated", config=str(path), proxies=len(proxies))

    async def close(self) -> None:
        """Stop serving the API, then close every listener and connection."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self.collection.close()
        log.info("server_stopped")

    async def __aenter__(self) -> ToxiproxyServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _serve_until_signal(server: ToxiproxyServer) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with server:
            await stop.wait()
            log.info("shutdown_requested")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _run(coro: object) -> None:
    # uvloop: measured by benchmarks/toxiproxy_bench.py (figures in its header comment).
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]
    else:
        uvloop.run(coro)  # type: ignore[arg-type]


def serve(
    host: str = "127.0.0.1",
    port: int = 8474,
    config: pathlib.Path | None = None,
    seed: int | None = None,
    proxy_metrics: bool = False,
) -> None:
    """Run the server until SIGINT/SIGTERM, then close every listener and connection and return."""
    configure_logging()
    server = ToxiproxyServer(host, port, config=config, seed=seed, proxy_metrics=proxy_metrics)
    _run(_serve_until_signal(server))
