"""The web UI: server-rendered pages (Jinja2, no build step, nothing from a CDN) over the same
store and API; small inline scripts (allowed by a per-page nonce in the Content-Security-Policy,
nothing else runs) poll the API for live progress and send the operator's token (kept in
sessionStorage) as a bearer header. Every page shows the safety lever when it is engaged. The
gate has checked the token before a page is built (no token: the login page, the same answer
for a run that exists and one that does not)."""

from __future__ import annotations

import functools
import secrets
import time
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from harness.service.api import RunId, run_view
from harness.service.auth import COOKIE, Principal, presented_secret
from harness.service.schedules_api import views as schedule_views
from harness.service.service import Service
from harness.service.store import RunFilter


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "—"


def _duration(run: dict[str, Any]) -> str:
    start, end = run.get("started_at"), run.get("ended_at")
    return f"{end - start:.0f} s" if start and end else "—"


def csp(nonce: str, *, header: bool = True) -> str:
    """The pages' Content-Security-Policy (the header adds `frame-ancestors`, which a
    <meta> copy may not carry)."""
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; frame-src 'self'; form-action 'self'; "
        "base-uri 'none'"
    )
    return policy + "; frame-ancestors 'none'" if header else policy


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=select_autoescape(["j2"]),
    )
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    return env


def page_headers(nonce: str) -> dict[str, str]:
    """The headers of every page: the CSP its <meta> copy carries (same nonce) plus
    `frame-ancestors`, and the frame, sniffing and referrer headers."""
    return {
        "Content-Security-Policy": csp(nonce),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = (
        environment()
        .get_template(template)
        .render(nonce=nonce, csp=csp(nonce, header=False), **context)
    )
    return HTMLResponse(html, status_code=status, headers=page_headers(nonce))


def login_page(detail: str, status: int = 401) -> HTMLResponse:
    """The page the gate answers a page load without a token with: built like every other
    page, so it carries the same headers."""
    page = render("login.html.j2", status, detail=detail, lever=None)
    page.headers["WWW-Authenticate"] = "Bearer"
    return page


def build(service: Service) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    reader = Depends(service.auth.reader)

    def page(template: str, **context: Any) -> HTMLResponse:
        return render(template, lever=service.lever.state(), **context)

    @router.get("/", response_class=HTMLResponse)
    async def runs_page(who: Principal = reader) -> HTMLResponse:
        rows, total = await anyio.to_thread.run_sync(service.store.runs, RunFilter(), 100)
        return page(
            "runs.html.j2",
            runs=[run_view(service, r) for r in rows],
            total=total,
            scenarios=service.choose("all"),
        )

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    async def run_page(run_id: RunId, who: Principal = reader) -> HTMLResponse:
        row = await anyio.to_thread.run_sync(service.store.run, run_id)
        if row is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return page("run.html.j2", run=run_view(service, row))

    @router.get("/schedules", response_class=HTMLResponse)
    async def schedules_page(who: Principal = reader) -> HTMLResponse:
        rows = await anyio.to_thread.run_sync(schedule_views, service)
        return page("schedules.html.j2", schedules=rows)

    @router.post("/session", status_code=204)
    async def session(request: Request, who: Principal = reader) -> Response:
        """The UI's page loads read with an HttpOnly cookie the service sets (scripts never
        see it; a change never accepts it)."""
        answer = Response(status_code=204)
        answer.set_cookie(
            COOKIE,
            presented_secret(request, allow_cookie=False),
            httponly=True,
            samesite="strict",
            path="/",
            secure=request.url.scheme == "https",
        )
        return answer

    return router
