"""The gate every HTTP request passes first (an ASGI middleware, before any route reads or
parses a body): who is calling, may this kind of call be made at all, is the body small enough;
and the security headers on every answer.

- `/healthz` is open; `/metrics` is open when the settings say so.
- Every other call needs a token (reads from loopback may be open, by setting); without one:
  401 (the UI's pages answer with the login page). A `read` token on a call that changes
  something: 403. Both before the body is read, and denied changes are audited with the
  client's address.
- A body larger than MAX_BODY (declared or streamed): 413, before parsing.
- Every answer carries `X-Frame-Options`, `X-Content-Type-Options: nosniff` and
  `Referrer-Policy: no-referrer`. Every HTML answer carries a Content-Security-Policy header:
  the UI's pages, the login page the gate answers with included, their own (scripts by the
  page's nonce only, `frame-ancestors 'none'`, `X-Frame-Options: DENY`); any other HTML (a
  run's report.html) one without scripts that only the service's own pages may frame.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.errors import HarnessError
from harness.service.auth import Auth, Principal, client_address, loopback

MAX_BODY = 64 * 1024
READS = ("GET", "HEAD", "OPTIONS")
READ_POSTS = ("/session",)
"""POSTs a read token may make: the UI's login sets the page cookie, nothing else."""
SECURITY_HEADERS = [
    (b"x-frame-options", b"SAMEORIGIN"),  # the run page frames its own report
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
Denial = Callable[[Request, Principal | None, int, str], Awaitable[None]]
"""Records a refused call (the audit log): request, caller if known, status, why."""
LoginPage = Callable[[str, int], Response]
"""The UI's login page (detail, status), with the headers of every page."""
DOCUMENT_CSP = (
    b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    b"frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
"""The CSP of an HTML answer that brings none (a run's report.html: inline styles and SVG,
no script; the run page frames it)."""


class BodyTooLarge(HTTPException, HarnessError):
    """Raised inside the app's body read: FastAPI passes an HTTPException on as it is."""

    def __init__(self) -> None:
        super().__init__(413, f"request body larger than {MAX_BODY} bytes")


def _json(
    status: int, detail: Any, headers: dict[str, str] | None = None
) -> tuple[int, bytes, list]:
    body = json.dumps({"detail": detail}).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return status, body, [(b"content-type", b"application/json"), *extra]


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        auth: Auth,
        open_metrics: bool,
        on_denied: Denial,
        login_page: LoginPage,
    ):
        self.app = app
        self.auth = auth
        self.open_metrics = open_metrics
        self.on_denied = on_denied
        self.login_page = login_page

    def _open(self, path: str) -> bool:
        return path == "/healthz" or (path == "/metrics" and self.open_metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        path, method = scope["path"], scope["method"].upper()
        request = Request(scope)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            status = 413 if length.isdigit() else 400
            detail = f"request body larger than {MAX_BODY} bytes" if status == 413 else (
                "bad Content-Length")  # fmt: skip
            await _answer(send, *_json(status, detail, {"connection": "close"}))
            return
        if self._open(path):
            await self.app(scope, _capped(receive), send)
            return
        reading = method in READS
        principal = await self.auth.identify(request, allow_cookie=reading)
        if principal is None and reading and self.auth.open_reads_on_loopback and loopback(request):
            principal = Principal("anonymous", "read")
        if principal is None:
            await self.on_denied(request, None, 401, "no valid bearer token")
            if reading and not path.startswith(("/api/", "/openapi.json", "/metrics")):
                await self.login_page("a bearer token is required", 401)(scope, receive, send)
                return
            await _answer(send, *_json(401, "a bearer token is required",
                                       {"WWW-Authenticate": "Bearer"}))  # fmt: skip
            return
        if not reading and principal.role == "read" and path not in READ_POSTS:
            why = f"token {principal.name!r} is read-only"
            await self.on_denied(request, principal, 403, why)
            await _answer(send, *_json(403, {"rule": "role", "message": why}))
            return
        scope.setdefault("state", {})["principal"] = principal
        try:
            await self.app(scope, _capped(receive), send)
        except BodyTooLarge:
            await _answer(send, *_json(413, f"request body larger than {MAX_BODY} bytes"))


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            html = any(k.lower() == b"content-type" and v.lower().startswith(b"text/html")
                       for k, v in headers)  # fmt: skip
            if html and b"content-security-policy" not in present:
                headers.append((b"content-security-policy", DOCUMENT_CSP))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _capped(receive: Receive) -> Receive:
    """A body streamed without a length is cut off at MAX_BODY."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise BodyTooLarge
        return message

    return wrapped


async def _answer(send: Send, status: int, body: bytes, headers: list) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


__all__ = ["MAX_BODY", "Gate", "client_address"]
