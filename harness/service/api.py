"""The JSON API for scenarios and runs: start, follow (polling and server-sent events), cancel,
history, and the emergency stop. Mutating calls need an operator or admin token and are
audited in the same transaction as their change; a rejected request writes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from harness.service.auth import Principal
from harness.service.manager import TargetBusy
from harness.service.schedules import GuardSpec
from harness.service.service import PlanProblem, Service
from harness.service.store import RUN_STATUSES, Audit, RunFilter
from harness.stack.slots import MAX_SLOTS

RunId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
DOWNLOADS = ("evidence.json", "junit.xml", "report.html", "bundle.tar.gz")


class RunCreate(BaseModel):
    """Start a run: scenario IDs (or aliases) or `all`, on a target (name or target file path;
    the local stack's slots when omitted), with guards."""

    model_config = ConfigDict(extra="forbid")

    scenarios: list[Annotated[str, Field(min_length=1, max_length=100)]] | Literal["all"] = Field(
        min_length=1
    )
    target: str | None = Field(None, min_length=1, max_length=1000)
    slots: int | None = Field(None, ge=1, le=MAX_SLOTS)
    guards: list[GuardSpec] = Field(default_factory=list, max_length=20)
    started_by: str | None = Field(None, max_length=200)
    variants: bool = False


def field_error(field: str, message: str, status: int = 422) -> HTTPException:
    """The same shape as FastAPI's own validation errors, naming the body field."""
    return HTTPException(status, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


def _when(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def run_view(service: Service, row: dict[str, Any]) -> dict[str, Any]:
    """A stored run as the API shows it, with live progress while it is in progress."""
    out = Path(row["out_dir"])
    live = service.manager.active.get(row["id"])
    view = {
        "id": row["id"],
        "status": live.status if live else row["status"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "started_by": row["started_by"],
        "schedule": row["schedule"],
        "targets": [t["name"] for t in row["targets"]],
        "scenarios": row["scenarios"],
        "reason": row["reason"],
        "aborted_by": row["aborted_by"],
        "notify_error": row["notify_error"],
        "results": live.results if live else row.get("results", []),
        "downloads": {
            name: f"/api/runs/{row['id']}/{name}"
            for name in DOWNLOADS
            if name == "bundle.tar.gz" or (out / name).exists()
        },
    }
    if live is not None:
        view["progress"] = live.progress()
    return view


def build(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api")
    reader = Depends(service.auth.reader)
    mutator = Depends(service.auth.mutator)

    @router.get("/scenarios", tags=["scenarios"])
    async def scenarios(who: Principal = reader) -> list[dict[str, Any]]:
        """The catalogue the service runs from."""
        return [
            {
                "id": s.id,
                "base_id": s.base_id,
                "title": s.title,
                "aliases": s.aliases,
                "faults": sorted({f.kind for f in s.faults}),
                "alerts": s.expect.alerts.fire,
            }
            for s in service.choose("all")
        ]

    @router.post("/runs", status_code=202, tags=["runs"])
    async def start_run(body: RunCreate, request: Request, who: Principal = mutator) -> dict:
        """Validate, record and start a run in the background; 409 when a target is busy."""
        try:
            plan = await service.plan(
                body.scenarios,
                target=body.target,
                slots=body.slots,
                guards=body.guards,
                started_by=body.started_by or f"{who.name} (api)",
                variants=body.variants,
                request=body.model_dump(mode="json"),
            )
        except PlanProblem as exc:
            raise field_error(exc.field, str(exc)) from None
        audit = Audit(who.name, "run.start", ",".join(t.name for t in plan.targets),
                      await request.body())  # fmt: skip
        try:
            run_id = service.manager.start(plan, audit=audit)
        except TargetBusy as exc:
            raise HTTPException(409, str(exc)) from None
        return {"run_id": run_id, "status": "queued", "url": f"/api/runs/{run_id}"}

    @router.get("/runs", tags=["runs"])
    async def list_runs(
        who: Principal = reader,
        scenario: Annotated[str | None, Query(max_length=100)] = None,
        verdict: Annotated[Literal[RUN_STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
        schedule: Annotated[str | None, Query(max_length=200)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> dict[str, Any]:
        """History, newest first; `since`/`until` are ISO times or Unix seconds."""
        rows, total = service.store.runs(
            RunFilter(scenario, verdict, schedule, _when(since), _when(until)), limit, offset
        )
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "runs": [run_view(service, r) for r in rows],
        }

    def _row(run_id: str) -> dict[str, Any]:
        row = service.store.run(run_id)
        if row is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return row

    @router.get("/runs/{run_id}", tags=["runs"])
    async def get_run(run_id: RunId, who: Principal = reader) -> dict[str, Any]:
        """Status and live progress (current scenario and phase, results and checks so far)."""
        live = service.manager.active.get(run_id)
        return run_view(service, live.row if live else _row(run_id))

    @router.get("/runs/{run_id}/events", tags=["runs"])
    async def run_events(run_id: RunId, who: Principal = reader) -> EventSourceResponse:
        """Server-sent events: every `status`, `phase`, `result`, `guard` event so far, then
        new ones as they happen, ending with `end`."""
        row = _row(run_id)
        live = service.manager.active.get(run_id)

        async def stream() -> AsyncIterator[dict[str, str]]:
            if live is None:
                end = {"status": row["status"], "reason": row["reason"]}
                yield {"event": "end", "data": json.dumps(end)}
                return
            seen = 0
            while True:
                await live.changed(seen)
                while seen < len(live.events):
                    event = live.events[seen]
                    seen += 1
                    yield {"event": event["event"], "data": json.dumps(event, default=str)}
                    if event["event"] == "end":
                        return
                if live.done.is_set():
                    return

        return EventSourceResponse(stream())

    @router.post("/runs/{run_id}/cancel", status_code=202, tags=["runs"])
    async def cancel_run(run_id: RunId, request: Request, who: Principal = mutator) -> dict:
        """Cancel a queued or running run: it heals, then concludes as `cancelled`."""
        row = _row(run_id)
        if run_id not in service.manager.active:
            raise HTTPException(409, f"run {run_id} is not in progress (it is {row['status']})")
        service.store.audit(Audit(who.name, "run.cancel", run_id, await request.body()))
        service.manager.cancel(run_id, who.name)
        return {"run_id": run_id, "cancel_requested": True}

    @router.post("/stop-all", tags=["emergency"])
    async def stop_all(request: Request, who: Principal = mutator) -> dict[str, Any]:
        """Emergency stop: cancel every run and heal every fault on every known target,
        proven by read-back; the answer lists what was healed per target."""
        result = await service.manager.stop_all(service.targets.all(), who.name)
        names = ",".join(r["target"] for r in result["targets"])
        service.store.audit(Audit(who.name, "stop-all", names, await request.body()))
        return result

    return router
