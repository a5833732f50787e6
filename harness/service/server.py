"""Serving the app with uvicorn, heal first: on SIGTERM or SIGINT the service stops accepting
connections, cancels every run and heals every fault on every known target (bounded by
`heal_timeout`), and only then drains open connections (bounded by `drain_timeout`; a client
that sends its body slowly cannot hold the heal back), then ends the runs' bookkeeping.

uvicorn's own order is drain (unbounded by default), then the app's lifespan shutdown: one slow
socket kept a fault in place until the client gave up, and the SIGKILL a supervisor sends after
its grace period would leave it for the next start.
"""

from __future__ import annotations

import socket

import structlog
import uvicorn
from fastapi import FastAPI

log = structlog.get_logger("service.server")

KEEP_ALIVE_S = 5
"""An idle keep-alive connection is closed after this long."""


class HealFirstServer(uvicorn.Server):
    """uvicorn's server with the heal moved before the drain."""

    def __init__(self, config: uvicorn.Config, app: FastAPI):
        super().__init__(config)
        self.service = app.state.service

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:  # stop accepting first (uvicorn closes them again: harmless)
            server.close()
        log.warning("shutdown_heal_first")
        result = await self.service.heal_first()
        log.warning("shutdown_healed", clean=result.get("clean"), seconds=result.get("seconds"))
        await super().shutdown(sockets)


def serve(app: FastAPI, host: str, port: int) -> None:
    settings = app.state.service.settings
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=max(1, round(settings.drain_timeout)),
        h11_max_incomplete_event_size=64 * 1024,
    )
    HealFirstServer(config, app).run()
