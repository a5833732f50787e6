"""Schedules CRUD. A schedule is checked like a run request when it is saved (its scenarios
and target must exist), so a bad one is refused at once rather than skipped at 3 a.m.
Schedules declared in the schedules file are read-only here: the file is their source."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response

from harness.service.api import field_error
from harness.service.auth import Principal
from harness.service.schedules import Schedule, next_fire
from harness.service.service import PlanProblem, Service
from harness.service.store import Audit

Name = Annotated[str, Path(min_length=1, max_length=200)]


def view(service: Service, row: dict[str, Any]) -> dict[str, Any]:
    schedule = Schedule.model_validate(row["spec"])
    upcoming = next_fire(schedule, datetime.fromtimestamp(time.time(), UTC))
    return {
        "name": row["name"],
        "source": row["source"],
        "spec": row["spec"],
        "next_fire": upcoming.isoformat() if upcoming else None,
        "last_checked": row["last_checked"],
        "events": service.store.schedule_events(row["name"], limit=20),
    }


def build(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api/schedules", tags=["schedules"])
    reader = Depends(service.auth.reader)
    mutator = Depends(service.auth.mutator)

    async def check(schedule: Schedule) -> None:
        try:
            await service.plan(schedule.scenarios, target=schedule.target, slots=schedule.slots)
        except PlanProblem as exc:
            raise field_error(exc.field, str(exc)) from None

    def existing(name: str) -> dict[str, Any]:
        row = service.store.schedule(name)
        if row is None:
            raise HTTPException(404, f"no schedule {name!r}")
        return row

    def editable(name: str) -> dict[str, Any]:
        row = existing(name)
        if row["source"] == "file":
            raise HTTPException(
                409, f"schedule {name!r} is declared in the schedules file; edit it there"
            )
        return row

    @router.get("")
    async def list_schedules(who: Principal = reader) -> list[dict[str, Any]]:
        return [view(service, row) for row in service.store.schedules()]

    @router.post("", status_code=201)
    async def create(body: Schedule, request: Request, who: Principal = mutator) -> dict:
        if service.store.schedule(body.name) is not None:
            raise HTTPException(409, f"schedule {body.name!r} exists; PUT to replace it")
        await check(body)
        audit = Audit(who.name, "schedule.create", body.name, await request.body())
        service.store.put_schedule(body.name, body.model_dump(mode="json"), "api", audit)
        return view(service, existing(body.name))

    @router.get("/{name}")
    async def get(name: Name, who: Principal = reader) -> dict[str, Any]:
        return view(service, existing(name))

    @router.put("/{name}")
    async def replace(
        name: Name, body: Schedule, request: Request, who: Principal = mutator
    ) -> dict:
        if body.name != name:
            raise field_error("name", f"the body names {body.name!r}, the path {name!r}")
        if service.store.schedule(name) is not None:
            editable(name)
        await check(body)
        audit = Audit(who.name, "schedule.replace", name, await request.body())
        service.store.put_schedule(name, body.model_dump(mode="json"), "api", audit)
        return view(service, existing(name))

    @router.delete("/{name}", status_code=204)
    async def remove(name: Name, request: Request, who: Principal = mutator) -> Response:
        editable(name)
        service.store.delete_schedule(
            name, Audit(who.name, "schedule.delete", name, await request.body())
        )
        return Response(status_code=204)

    return router
