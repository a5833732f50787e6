"""The notification receiver Alertmanager posts to: records every notification it is sent.

It proves the last hop of an alert (Alertmanager → notification) with what actually arrived.
Runs as its own process (`python -m harness.stack.webhook_receiver`) so it outlives
`harness up --detach` and keeps recording between runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = structlog.get_logger("webhook_receiver")

RECORD_KEY = web.AppKey("record", Path)
COUNTER_KEY = web.AppKey("counter", Counter)
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)


def read_notifications(record: Path) -> list[dict]:
    """Every notification recorded so far, oldest first."""
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


async def _receive(request: web.Request) -> web.Response:
    receiver = request.match_info["receiver"]
    try:
        payload = await request.json()
    except ValueError:
        return web.json_response({"error": "body is not JSON"}, status=400)
    entry = {"received_at": time.time(), "receiver": receiver, "payload": payload}
    with request.app[RECORD_KEY].open("a") as out:
        out.write(json.dumps(entry, separators=(",", ":")) + "\n")
    request.app[COUNTER_KEY].labels(receiver=receiver).inc()
    alerts = payload.get("alerts", []) if isinstance(payload, dict) else []
    log.info(
        "notification_received",
        receiver=receiver,
        status=payload.get("status") if isinstance(payload, dict) else None,
        alerts=",".join(a.get("labels", {}).get("alertname", "?") for a in alerts),
    )
    return web.json_response({"status": "recorded"})


async def _list(request: web.Request) -> web.Response:
    return web.json_response(read_notifications(request.app[RECORD_KEY]))


async def _health(request: web.Request) -> web.Response:
    count = len(read_notifications(request.app[RECORD_KEY]))
    return web.json_response({"status": "ok", "notifications": count})


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(record: Path) -> web.Application:
    """The receiver's HTTP app, writing notifications as JSON lines to `record`."""
    registry = CollectorRegistry()
    app = web.Application()
    app[RECORD_KEY] = record
    app[REGISTRY_KEY] = registry
    app[COUNTER_KEY] = Counter(
        "harness_webhook_notifications",
        "Alertmanager notifications received, by receiver path",
        ["receiver"],
        registry=registry,
    )
    app.router.add_post("/alertmanager/{receiver}", _receive)
    app.router.add_get("/notifications", _list)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/metrics", _metrics)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--record", type=Path, required=True, help="JSON-lines file to append to")
    args = parser.parse_args(argv)
    args.record.parent.mkdir(parents=True, exist_ok=True)
    args.record.touch()
    log.info("webhook_receiver_starting", host=args.host, port=args.port, record=str(args.record))
    web.run_app(make_app(args.record), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
