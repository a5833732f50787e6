"""The JSON API for scenarios and runs: start, follow (polling and server-sent events), cancel,
history, the emergency stop, the safety lever and the audit log (the tokens: tokens_api).
Starting a run needs an operator or admin token and passes the token's policy; every change is
audited in the same transaction as the change, and a rejected request writes nothing but its
audit entry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from harness.service.auth import Principal, client_address
from harness.service.manager import Refused, RunPlan, TargetBusy
from harness.service.policy import RunAsk, check_run
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
    note: str = Field("", max_length=500, description="free text shown with the run")
    variants: bool = False


class LeverChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


async def audited(service: Service, request: Request, who: Principal, action: str,
                  target: str = "", detail: str = "") -> Audit:  # fmt: skip
    """The audit entry of an accepted call (the body as its digest, the client's address)."""
    return Audit(who.name, action, target, await request.body(), client_address(request),
                 detail=detail)  # fmt: skip


def lever_refusal(service: Service) -> None:
    why = service.lever.refusal()
    if why:
        raise HTTPException(423, {"rule": "safety_lever", "message": why})


def ask_for(service: Service, plan: RunPlan, who: Principal) -> RunAsk:
    return RunAsk(plan.scenarios, [t.name for t in plan.targets], plan.guards,
                  service.manager.in_progress(who.name))  # fmt: skip


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
        "note": row.get("note") or "",
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
    stopper = Depends(service.auth.stopper)
    lever = Depends(service.auth.lever)
    admin = Depends(service.auth.admin)

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
        """Validate, check the token's policy, record and start a run in the background; 423
        while the safety lever is engaged, 403 naming the policy rule, 409 when a target is
        busy."""
        lever_refusal(service)
        try:
            plan = await service.plan(
                body.scenarios,
                target=body.target,
                slots=body.slots,
                guards=body.guards,
                started_by=who.name,
                variants=body.variants,
                request=body.model_dump(mode="json"),
                note=body.note,
            )
        except PlanProblem as exc:
            raise field_error(exc.field, str(exc)) from None
        check_run(who.name, who.policy, ask_for(service, plan, who))
        targets = ",".join(t.name for t in plan.targets)
        audit = await audited(service, request, who, "run.start", targets)
        try:
            run_id = await service.manager.start(plan, audit=audit)
        except Refused as exc:
            raise HTTPException(423, {"rule": "safety_lever", "message": str(exc)}) from None
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
        rows, total = await anyio.to_thread.run_sync(
            service.store.runs,
            RunFilter(scenario, verdict, schedule, _when(since), _when(until)),
            limit,
            offset,
        )
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "runs": [run_view(service, r) for r in rows],
        }

    async def _row(run_id: str) -> dict[str, Any]:
        row = await anyio.to_thread.run_sync(service.store.run, run_id)
        if row is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return row

    @router.get("/runs/{run_id}", tags=["runs"])
    async def get_run(run_id: RunId, who: Principal = reader) -> dict[str, Any]:
        """Status and live progress (current scenario and phase, results and checks so far)."""
        live = service.manager.active.get(run_id)
        return run_view(service, live.row if live else await _row(run_id))

    @router.get("/runs/{run_id}/events", tags=["runs"])
    async def run_events(run_id: RunId, who: Principal = reader) -> EventSourceResponse:
        """Server-sent events: every `status`, `phase`, `result`, `guard` event so far, then
        new ones as they happen, ending with `end`."""
        row = await _row(run_id)
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
        row = await _row(run_id)
        if run_id not in service.manager.active:
            raise HTTPException(409, f"run {run_id} is not in progress (it is {row['status']})")
        audit = await audited(service, request, who, "run.cancel", run_id)
        await anyio.to_thread.run_sync(service.store.audit, audit)
        service.manager.cancel(run_id, who.name)
        return {"run_id": run_id, "cancel_requested": True}

    @router.post("/stop-all", tags=["emergency"])
    async def stop_all(request: Request, who: Principal = stopper) -> dict[str, Any]:
        """Emergency stop: cancel every run and heal every fault on every known target,
        proven by read-back; the answer lists what was healed per target. Audited before it
        starts."""
        targets = service.targets.all()
        audit = await audited(service, request, who, "stop-all", ",".join(t.name for t in targets))
        await anyio.to_thread.run_sync(service.store.audit, audit)
        return await service.manager.stop_all(targets, who.name)

    # --- the safety lever ------------------------------------------------------------------

    @router.get("/lever", tags=["emergency"])
    async def lever_state(who: Principal = reader) -> dict[str, Any]:
        """Whether the safety lever is engaged, since when, by whom and why."""
        return service.lever.state()

    @router.post("/lever/engage", tags=["emergency"])
    async def engage(body: LeverChange, request: Request, who: Principal = lever) -> dict:
        """Stop everything (the emergency stop) and refuse every new run and scheduled fire
        until an admin releases the lever; it stays engaged across restarts."""
        audit = await audited(service, request, who, "lever.engage", detail=body.reason)
        return await service.lever.engage(who.name, body.reason, audit)

    @router.post("/lever/release", tags=["emergency"])
    async def release(body: LeverChange, request: Request, who: Principal = admin) -> dict:
        """Let runs and schedules start again (admin only, with a reason)."""
        if not service.lever.engaged:
            raise HTTPException(409, "the safety lever is not engaged")
        audit = await audited(service, request, who, "lever.release", detail=body.reason)
        return await service.lever.release(who.name, body.reason, audit)

    # --- admin -----------------------------------------------------------------------------

    @router.get("/audit", tags=["admin"])
    async def audit_log(
        who: Principal = admin,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> list[dict[str, Any]]:
        """The audit log, newest first: accepted and denied calls (with the client's
        address), scheduler fires and skips, guard aborts, the lever (admin only)."""
        return await anyio.to_thread.run_sync(service.store.audit_entries, limit, offset)

    return router
