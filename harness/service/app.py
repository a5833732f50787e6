"""The ASGI application: `create_app(settings)` builds the service and its routes; the app's
lifespan is the service's lifetime (crash recovery at start, runs and scheduler while up,
runs cancelled and healed at stop)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import Response

from harness import __version__
from harness.runner import execute
from harness.service import api, downloads, schedules_api, ui
from harness.service.manager import RunFn
from harness.service.service import Service
from harness.service.settings import ServiceSettings


def create_app(settings: ServiceSettings, *, run_fn: RunFn = execute) -> FastAPI:
    """The app; `run_fn` is `runner.execute` except in wire-less API tests."""
    service = Service(settings, run_fn=run_fn)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with service.running():
            yield

    app = FastAPI(
        title="JetStream chaos harness: game-day service",
        version=__version__,
        lifespan=lifespan,
        description="Runs fault scenarios against targets; history, schedules, guards, "
        "emergency stop. Mutating calls need a bearer token of role operator or admin.",
    )
    app.state.service = service
    app.include_router(api.build(service))
    app.include_router(schedules_api.build(service))
    app.include_router(downloads.build(service))
    app.include_router(ui.build(service))

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """The service's own metrics; a read token is needed unless `open_metrics`."""
        if not settings.open_metrics:
            await service.auth.reader(request)
        return Response(service.metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
