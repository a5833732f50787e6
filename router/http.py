"""HTTP side of the router on the metrics port: /metrics, /healthz, /readyz, POST /decide (the
synchronous intake, `intake_http`) and the /faults hook."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from router.connection import Connection
from router.faults import FaultHook, FaultSpecError
from router.metrics import Metrics

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(
    metrics: Metrics,
    conn: Connection,
    faults: FaultHook,
    *,
    readyz: bool = True,
    decide: Handler | None = None,
) -> web.Application:
    """The aiohttp application. The fault routes exist only when the hook is enabled (a router
    without the hook answers 404, like one that never had it); /readyz only when asked for;
    POST /decide when given its handler."""

    async def get_metrics(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        # Liveness: the process serves; NATS reachability is reported, not required.
        return web.json_response({"status": "ok", "nats": conn.describe()})

    async def get_readyz(_: web.Request) -> web.Response:
        ready = conn.connected
        return web.json_response(
            {"ready": ready, "nats": conn.describe()}, status=200 if ready else 503
        )

    async def get_faults(_: web.Request) -> web.Response:
        return web.json_response(faults.snapshot())

    async def post_faults(request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        specs = body.get("faults") if isinstance(body, dict) and "faults" in body else [body]
        if not isinstance(specs, list):
            return web.json_response({"error": "faults must be a list"}, status=400)
        try:
            for spec in specs:
                if not isinstance(spec, dict):
                    raise FaultSpecError("each fault must be a JSON object")
                faults.arm(str(spec.get("op")), spec)
        except FaultSpecError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(faults.snapshot(), status=201)

    async def delete_faults(request: web.Request) -> web.Response:
        faults.clear(request.match_info.get("op"))
        return web.json_response(faults.snapshot())

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", healthz)
    if readyz:
        app.router.add_get("/readyz", get_readyz)
    if decide is not None:
        app.router.add_post("/decide", decide)
    if faults.enabled:
        app.router.add_get("/faults", get_faults)
        app.router.add_post("/faults", post_faults)
        app.router.add_delete("/faults", delete_faults)
        app.router.add_delete("/faults/{op}", delete_faults)
    return app
