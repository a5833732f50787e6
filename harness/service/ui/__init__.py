"""The web UI: server-rendered pages (Jinja2, no build step, nothing from a CDN) over the same
store and API; small inline scripts poll the API for live progress and send the operator's
token (kept in sessionStorage) as a bearer header."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from harness.service.api import RunId, run_view
from harness.service.schedules_api import view as schedule_view
from harness.service.service import Service
from harness.service.store import RunFilter


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "—"


def _duration(run: dict[str, Any]) -> str:
    start, end = run.get("started_at"), run.get("ended_at")
    return f"{end - start:.0f} s" if start and end else "—"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=select_autoescape(["j2"]),
    )
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    return env


def build(service: Service) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    env = environment()

    async def page(request: Request, template: str, **context: Any) -> HTMLResponse:
        try:
            await service.auth.reader(request)
        except HTTPException as exc:
            html = env.get_template("login.html.j2").render(detail=exc.detail)
            return HTMLResponse(html, status_code=exc.status_code)
        return HTMLResponse(env.get_template(template).render(**context))

    @router.get("/", response_class=HTMLResponse)
    async def runs_page(request: Request) -> HTMLResponse:
        rows, total = service.store.runs(RunFilter(), limit=100)
        return await page(
            request,
            "runs.html.j2",
            runs=[run_view(service, r) for r in rows],
            total=total,
            scenarios=service.choose("all"),
        )

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    async def run_page(request: Request, run_id: RunId) -> HTMLResponse:
        row = service.store.run(run_id)
        if row is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return await page(request, "run.html.j2", run=run_view(service, row))

    @router.get("/schedules", response_class=HTMLResponse)
    async def schedules_page(request: Request) -> HTMLResponse:
        rows = [schedule_view(service, r) for r in service.store.schedules()]
        return await page(request, "schedules.html.j2", schedules=rows)

    return router
