"""The HTTP API, route for route and status for status as Toxiproxy 2.12 serves it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from harness.toxiproxy_server import jsonbody
from harness.toxiproxy_server.collection import PopulateError, ProxyCollection
from harness.toxiproxy_server.errors import ApiError
from harness.toxiproxy_server.metrics import ProxyMetrics

log = structlog.get_logger("toxiproxy.api")

VERSION = "2.12.0"
COLLECTION = web.AppKey("collection", ProxyCollection)
METRICS = web.AppKey("metrics", ProxyMetrics)

_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(value: Any, status: int = 200) -> web.Response:
    body = json.dumps(value, separators=(",", ":")).encode()
    return web.Response(status=status, body=body, content_type="application/json")


def _error(error: ApiError) -> web.Response:
    body = json.dumps({"error": error.message, "status": error.status}, separators=(",", ":"))
    return web.Response(
        status=error.status, body=(body + "\n").encode(), content_type="application/json"
    )


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain", charset="utf-8")


@web.middleware
async def _toxiproxy_rules(request: web.Request, handler: Handler) -> web.StreamResponse:
    """gorilla/mux behaviour: plain 404 and empty 405, the browser guard, errors as JSON."""
    http_exception = request.match_info.http_exception
    if http_exception is not None:
        if http_exception.status == 405:
            return web.Response(status=405)
        return _text(404, "404 page not found\n")
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        return _text(403, "User agent not allowed\n")
    try:
        response = await handler(request)
    except ApiError as error:
        if error.status >= 500:
            log.warning("api_error", method=request.method, path=request.path, error=error.message)
        response = _error(error)
    response.headers["X-Toxiproxy-Request-Id"] = "".join(
        secrets.choice(_XID_ALPHABET) for _ in range(20)
    )
    return response


def _collection(request: web.Request) -> ProxyCollection:
    return request.app[COLLECTION]


async def _version(request: web.Request) -> web.Response:
    body = json.dumps({"version": VERSION}) + "\n"
    return web.Response(
        body=body.encode(), headers={"Content-Type": "application/json;charset=utf-8"}
    )


async def _proxies(request: web.Request) -> web.Response:
    return _json(_collection(request).to_json())


async def _create_proxy(request: web.Request) -> web.Response:
    body = jsonbody.decode(await request.read())
    proxy = await _collection(request).create(body)
    return _json(proxy.to_json(), status=201)


async def _populate(request: web.Request) -> web.Response:
    try:
        body = jsonbody.decode(await request.read())
        proxies = await _collection(request).populate(body)
    except ApiError as error:
        return _populate_error(error, None)
    except PopulateError as failure:
        return _populate_error(failure.error, failure.proxies)
    return _json({"proxies": [proxy.to_json() for proxy in proxies]}, status=201)


def _populate_error(error: ApiError, proxies: list | None) -> web.Response:
    listed = None if proxies is None else [proxy.to_json() for proxy in proxies]
    return _json({"error": error.message, "status": error.status, "proxies": listed}, error.status)


async def _get_proxy(request: web.Request) -> web.Response:
    return _json(_collection(request).get(request.match_info["proxy"]).to_json())


async def _update_proxy(request: web.Request) -> web.Response:
    collection = _collection(request)
    name = request.match_info["proxy"]
    collection.get(name)
    proxy = await collection.update(name, jsonbody.decode(await request.read()))
    return _json(proxy.to_json())


async def _delete_proxy(request: web.Request) -> web.Response:
    await _collection(request).delete(request.match_info["proxy"])
    return web.Response(status=204)


async def _toxics(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json(proxy.toxics.to_json())


async def _create_toxic(request: web.Request) -> web.Response:
    collection = _collection(request)
    name = request.match_info["proxy"]
    collection.get(name)
    toxic = collection.add_toxic(name, await request.read())
    return _json(toxic.to_json())


async def _get_toxic(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json(proxy.toxics.get(request.match_info["toxic"]).to_json())


async def _update_toxic(request: web.Request) -> web.Response:
    collection = _collection(request)
    proxy_name, toxic_name = request.match_info["proxy"], request.match_info["toxic"]
    collection.get(proxy_name).toxics.get(toxic_name)
    toxic = collection.update_toxic(proxy_name, toxic_name, await request.read())
    return _json(toxic.to_json())


async def _delete_toxic(request: web.Request) -> web.Response:
    _collection(request).remove_toxic(request.match_info["proxy"], request.match_info["toxic"])
    return web.Response(status=204)


async def _reset(request: web.Request) -> web.Response:
    await _collection(request).reset()
    return web.Response(status=204)


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[METRICS].render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


def build_app(collection: ProxyCollection, metrics: ProxyMetrics | None = None) -> web.Application:
    """The aiohttp application; /metrics exists only when metrics are turned on."""
    app = web.Application(middlewares=[_toxiproxy_rules])
    app[COLLECTION] = collection
    proxy = "/proxies/{proxy:[^/]+}"
    toxic = proxy + "/toxics/{toxic:[^/]+}"
    routes = [
        ("GET", "/version", _version),
        ("GET", "/proxies", _proxies),
        ("POST", "/proxies", _create_proxy),
        ("POST", "/populate", _populate),
        ("POST", "/reset", _reset),
        ("GET", proxy, _get_proxy),
        ("POST", proxy, _update_proxy),
        ("PATCH", proxy, _update_proxy),
        ("DELETE", proxy, _delete_proxy),
        ("GET", proxy + "/toxics", _toxics),
        ("POST", proxy + "/toxics", _create_toxic),
        ("GET", toxic, _get_toxic),
        ("POST", toxic, _update_toxic),
        ("PATCH", toxic, _update_toxic),
        ("DELETE", toxic, _delete_toxic),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    if metrics is not None:
        app[METRICS] = metrics
        app.router.add_route("*", "/metrics", _metrics)
    return app
