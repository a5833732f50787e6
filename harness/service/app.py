"""The ASGI application: `create_app(settings)` builds the service and its routes; the app's
lifespan is the service's lifetime (crash recovery at start, runs and scheduler while up,
runs cancelled and healed at stop).

Every request passes the gate first (harness.service.gate: the token, the role of the call, the
body's size), then its route. A refusal by role or policy is a 403 naming the rule, audited
with the client's address. The OpenAPI description needs a read token; there is no Swagger UI
(it would load from a CDN).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from harness import __version__
from harness.runner import execute
from harness.service import api, downloads, schedules_api, tokens_api, ui
from harness.service.auth import Principal, client_address
from harness.service.gate import Gate
from harness.service.manager import RunFn
from harness.service.policy import Denied
from harness.service.service import Service
from harness.service.settings import ServiceSettings
from harness.service.store import Audit

log = structlog.get_logger("service.app")


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
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        description="Runs fault scenarios against targets; history, schedules, guards, "
        "emergency stop, safety lever. Every call needs a bearer token; starting runs needs "
        "role operator or admin and passes the token's policy.",
    )
    app.state.service = service
    app.include_router(api.build(service))
    app.include_router(schedules_api.build(service))
    app.include_router(downloads.build(service))
    app.include_router(tokens_api.build(service))
    app.include_router(ui.build(service))

    async def on_denied(request: Request, who: Principal | None, status: int, why: str) -> None:
        """A refused call in the audit log, with the caller's address (changes only: a
        refused read is logged, not audited, so scrapers cannot fill the store)."""
        if request.method in ("GET", "HEAD", "OPTIONS"):
            log.info("denied_read", path=request.url.path, client=client_address(request))
            return
        entry = Audit(who.name if who else "(none)", f"{request.method} {request.url.path}",
                      client=client_address(request), outcome="denied",
                      detail=f"{status}: {why}")  # fmt: skip
        log.warning("denied", token=entry.token, action=entry.action, client=entry.client,
                    detail=entry.detail)  # fmt: skip
        await anyio.to_thread.run_sync(service.store.audit, entry)

    app.add_middleware(
        Gate,
        auth=service.auth,
        open_metrics=settings.open_metrics,
        on_denied=on_denied,
        login_page=ui.login_page,
    )

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> JSONResponse:
        who = getattr(request.state, "principal", None)
        await on_denied(request, who, 403, f"{exc.rule}: {exc}")
        return JSONResponse({"detail": exc.detail()}, status_code=403)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(who: Principal = Depends(service.auth.reader)) -> dict[str, Any]:
        return app.openapi()

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """The service's own metrics; a read token is needed unless `open_metrics` (the
        gate decides)."""
        return Response(service.metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
